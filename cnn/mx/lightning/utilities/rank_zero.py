"""Mirror of lightning.pytorch.utilities.rank_zero: a logger as ranks other than zero see it."""

from __future__ import annotations

from typing import Any


class _DummyExperiment:
    """What a logger's ``experiment`` is on ranks other than zero: every call does nothing."""

    def _noop(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return self._noop

    def __getitem__(self, index: Any) -> "_DummyExperiment":
        return self


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
    def experiment(self) -> _DummyExperiment:
        return _DummyExperiment()

    def __getattr__(self, name: str) -> Any:
        if name in RankZeroOnlyLogger.WRITES:
            return _noop
        return getattr(self.logger, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.logger, name, value)
