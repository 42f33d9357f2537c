"""Mirror of lightning.pytorch.trainer.states: what the trainer is doing."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional


class RunningStage(str, Enum):
    """Lightning's ``RunningStage``: the values ``TrainerState.stage`` takes (each equal to its string)."""

    TRAINING = "train"
    SANITY_CHECKING = "sanity_check"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"


@dataclass
class TrainerState:
    """``fn``: the entry point running ("fit", "validate", "test", "predict"); ``stage``: the loop running
    ("train", "sanity_check", "validate", "test", "predict"); ``status``: "initializing", "running", "finished"
    or "interrupted"."""

    fn: Optional[str] = None
    stage: Optional[str] = None
    status: str = "initializing"

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def stopped(self) -> bool:
        return self.status in ("finished", "interrupted")
