"""Mirror of lightning.pytorch.loops.progress: where the fit loop stands, in one object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class FitProgress:
    """The fit loop's counters, saved and restored as a whole.

    ``epoch``: epochs finished; ``global_step``: optimizer steps taken; ``batches_that_stepped``:
    the logger's step axis (Lightning's ``_batches_that_stepped``); ``batch_in_epoch``: training
    batches finished in this epoch; ``total_batch_idx``: index of the last training batch over
    all epochs (-1 before the first); ``pending_val``: a validation due after the last batch has
    not run yet (only true right after a restore); ``phase``: where in the loop the trainer is
    (``idle``, ``batch``, ``batch_end``, ``validation``, ``epoch_end``), which decides the resume
    point of a checkpoint; ``is_last_batch``: the current batch is the epoch's last.
    """

    epoch: int = 0
    global_step: int = 0
    batches_that_stepped: int = 0
    batch_in_epoch: int = 0
    total_batch_idx: int = -1
    pending_val: bool = False
    phase: str = "idle"
    is_last_batch: bool = False

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take the fields ``state`` has (a checkpoint's ``loops.fit_loop`` holds a subset)."""
        for field in fields(self):
            if field.name in state:
                setattr(self, field.name, state[field.name])
