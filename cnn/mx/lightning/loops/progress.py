"""Mirror of lightning.pytorch.loops.progress: each loop's counters, in a small dataclass it owns.

A checkpoint saves a loop's progress as one object (``state_dict()`` is ``asdict``) and a resume loads it as one,
so nobody patches counters by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Progress:
    """The base: ``state_dict()`` is every field; ``load_state_dict`` takes the fields a state has (an older
    checkpoint may hold fewer) and leaves the others as they are."""

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for field in fields(self):
            if field.name in state:
                setattr(self, field.name, state[field.name])


@dataclass
class EpochProgress(Progress):
    """The fit loop's: ``current`` training epochs finished."""

    current: int = 0


@dataclass
class BatchProgress(Progress):
    """The training epoch loop's.

    ``batch_in_epoch``: training batches finished in this epoch; ``total_batch_idx``: index of the last training
    batch over all epochs (-1 before the first); ``is_last_batch``: the current batch is the epoch's last;
    ``batches_that_stepped``: the logger's step axis (Lightning's ``_batches_that_stepped``); ``pending_val``: a
    validation due after the last batch has not run yet (only true right after a restore); ``phase``: where in the
    loop the trainer is (``idle``, ``batch``, ``batch_end``, ``validation``, ``epoch_end``), which decides the resume
    point of a checkpoint.
    """

    batch_in_epoch: int = 0
    total_batch_idx: int = -1
    is_last_batch: bool = False
    batches_that_stepped: int = 0
    pending_val: bool = False
    phase: str = "idle"


@dataclass
class OptimizerProgress(Progress):
    """The automatic optimization's: ``steps`` optimizer steps taken (the trainer's ``global_step``)."""

    steps: int = 0


@dataclass
class EvaluationProgress(Progress):
    """The evaluation loop's: ``seen`` batches logged in this entry point (across a fit's validations: the step of
    evaluation ``on_step`` metrics, Lightning's ``_seen_batches_per_dataloader``); ``ready`` batches fetched in the
    current run (the logging cadence of evaluation batches)."""

    seen: int = 0
    ready: int = 0
