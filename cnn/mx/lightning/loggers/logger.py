"""Mirror of lightning.pytorch.loggers.logger: the base every MLX logger shares (run directories), the
``DummyLogger`` that ``fast_dev_run`` puts in place of the loggers, and ``rank_zero_experiment``."""

from __future__ import annotations

import os
from functools import wraps
from typing import Any, Callable, Mapping, Optional, Union

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


class VersionedLogger:
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
        return os.path.join(self._save_dir, self._name)

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


class DummyLogger:
    """Lightning's ``DummyLogger``: takes every logger call and writes nothing (``fast_dev_run``'s logger)."""

    name, version, save_dir, log_dir = "", "", None, None

    @property
    def experiment(self) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None: ...
    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None: ...
    def log_image(self, *args: Any, **kwargs: Any) -> None: ...
    def log_graph(self, *args: Any, **kwargs: Any) -> None: ...
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None: ...
    def save(self) -> None: ...
    def finalize(self, status: str) -> None: ...
