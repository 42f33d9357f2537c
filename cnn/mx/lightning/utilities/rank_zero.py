"""Mirror of lightning.pytorch.utilities.rank_zero: ``rank_zero_only`` (and its ``rank``), and a logger as ranks
other than zero see it."""

from __future__ import annotations

import os
from functools import wraps
from typing import Any, Callable


def rank_zero_only(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Lightning's: ``fn`` runs on rank zero only (elsewhere the call returns None). ``rank_zero_only.rank`` is this
    process's global rank: ``MLX_RANK`` (what ``mlx.launch`` sets) until a Trainer sets its group's, as Lightning
    reads ``RANK`` until its strategy sets it."""

    @wraps(fn)
    def on_rank_zero(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs) if rank_zero_only.rank == 0 else None

    return on_rank_zero


def _launcher_rank() -> int:
    rank = os.environ.get("MLX_RANK", "0")
    return int(rank) if rank.isdigit() else 0


rank_zero_only.rank = _launcher_rank()  # type: ignore[attr-defined]


class DummyExperiment:
    """What a logger's ``experiment`` is on ranks other than zero: every call does nothing."""

    def _noop(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return self._noop

    def __getitem__(self, index: Any) -> "DummyExperiment":
        return self

    def __setitem__(self, index: Any, value: Any) -> None:
        """Item assignment does nothing either (Lightning's)."""


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class RankZeroOnlyLogger:
    """A logger as ranks other than zero see it (Lightning's ``rank_zero_only`` loggers): its
    name, version and directories read through (the version is rank zero's, set by the trainer),
    every write does nothing and no directory is ever created."""

    WRITES = frozenset({"log_metrics", "log_hyperparams", "log_image", "log_graph", "save",
                        "finalize", "after_save_checkpoint"})

    def __init__(self, logger: Any) -> None:
        object.__setattr__(self, "logger", logger)

    @property
    def experiment(self) -> DummyExperiment:
        return DummyExperiment()

    def __getattr__(self, name: str) -> Any:
        if name in RankZeroOnlyLogger.WRITES:
            return _noop
        return getattr(self.logger, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.logger, name, value)
