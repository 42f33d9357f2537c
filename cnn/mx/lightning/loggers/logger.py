"""Mirror of lightning.pytorch.loggers.logger: ``Logger``, the base class of every logger (a user's too), the
``VersionedLogger`` base of the file loggers (run directories), the ``DummyLogger`` that ``fast_dev_run`` puts in
place of the loggers, and ``rank_zero_experiment``."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from argparse import Namespace
from functools import wraps
from typing import Any, Callable, Optional, Union

from cnn.mx.lightning.utilities.rank_zero import DummyExperiment, rank_zero_only

from cnn.runs import claim_version


def rank_zero_experiment(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Lightning's: a logger's ``experiment`` getter that, on ranks other than zero, returns an experiment whose
    every call does nothing, so those ranks never start a run of their own (an MLflow run, a W&B run)."""

    @wraps(fn)
    def experiment(self: Any) -> Any:
        if rank_zero_only.rank > 0:
            return DummyExperiment()
        return fn(self)

    return experiment


class Logger(ABC):
    """Lightning's ``Logger`` (with fabric's base): what the trainer calls on a logger. A subclass gives ``name``,
    ``version``, ``log_metrics`` and ``log_hyperparams``; the rest does nothing by default."""

    @property
    @abstractmethod
    def name(self) -> Optional[str]:
        """The experiment's name."""

    @property
    @abstractmethod
    def version(self) -> Optional[Union[int, str]]:
        """The experiment's version."""

    @property
    def root_dir(self) -> Optional[str]:
        """Where the versions of this experiment live, or None when the logger keeps nothing locally."""
        return None

    @property
    def log_dir(self) -> Optional[str]:
        """This version's directory, or None when the logger keeps nothing locally."""
        return None

    @property
    def save_dir(self) -> Optional[str]:
        """The root of the logs, or None when the logger keeps nothing locally."""
        return None

    @property
    def group_separator(self) -> str:
        """What joins a metric's group and name (``train/loss``)."""
        return "/"

    @abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: Optional[int] = None) -> None:
        """Record ``metrics`` (name -> number) at ``step``."""

    @abstractmethod
    def log_hyperparams(self, params: Union[dict[str, Any], Namespace], *args: Any, **kwargs: Any) -> None:
        """Record the hyper-parameters."""

    def log_graph(self, model: Any, input_array: Any = None) -> None:  # noqa: B027 (optional, as Lightning's)
        """Record the model's graph (nothing by default)."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:  # noqa: B027 (optional, as Lightning's)
        """Called after a checkpoint callback saved a checkpoint (nothing by default)."""

    def save(self) -> None:  # noqa: B027 (optional, as Lightning's)
        """Write what is buffered (nothing by default)."""

    def finalize(self, status: str) -> None:
        """The run ended with ``status`` ("success", "failed"): ``save()``."""
        self.save()


class VersionedLogger(Logger):
    """Lightning's run directories: ``save_dir/name/version_N[/sub_dir]``, the next free ``N`` unless
    ``version`` is given (an int, or a string used verbatim), decided on first access. The base of
    every MLX logger, so they all place (and share, across ranks) a run directory alike."""

    def __init__(self, save_dir: Union[str, os.PathLike], name: Optional[str], version: Optional[Union[int, str]],
                 sub_dir: Optional[Union[str, os.PathLike]] = None) -> None:
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._sub_dir = None if sub_dir is None else os.fspath(sub_dir)

    @property
    def name(self) -> str:
        return self._name

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def root_dir(self) -> str:
        return os.path.join(self.save_dir, self.name)  # the properties: a subclass may override them

    @property
    def version(self) -> Union[int, str]:
        if self._version is None:
            self._version = self._get_next_version()
        return self._version

    @property
    def chosen_version(self) -> Optional[Union[int, str]]:
        """The version once one is chosen, None before (asking ``version`` would choose one)."""
        return self._version

    def share_version(self, version: Union[int, str]) -> None:
        """Write under ``version`` (rank zero's, on the other ranks) instead of claiming one."""
        self._version = version

    @property
    def sub_dir(self) -> Optional[str]:
        return self._sub_dir

    @property
    def log_dir(self) -> str:
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        log_dir = os.path.join(self.root_dir, version)
        if self._sub_dir:
            log_dir = os.path.join(log_dir, self._sub_dir)
        return os.path.expanduser(os.path.expandvars(log_dir))

    def _get_next_version(self) -> int:
        # os.mkdir claims the number: two runs started together never share a version_N.
        return claim_version(self.root_dir)


class DummyLogger(Logger):
    """Lightning's ``DummyLogger``: takes every logger call, any method, and writes nothing (``fast_dev_run``'s
    logger); its ``experiment`` takes every call too."""

    def __init__(self) -> None:
        super().__init__()
        self._experiment = DummyExperiment()

    @property
    def experiment(self) -> DummyExperiment:
        return self._experiment

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    def log_metrics(self, *args: Any, **kwargs: Any) -> None: ...
    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None: ...

    def __getitem__(self, idx: int) -> "DummyLogger":
        return self

    def __getattr__(self, name: str) -> Callable:
        """Any other method: one that does nothing, as Lightning's."""

        def method(*args: Any, **kwargs: Any) -> None:
            return None

        return method
