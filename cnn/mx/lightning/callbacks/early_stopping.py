"""Mirror of lightning.pytorch.callbacks.early_stopping: ``EarlyStopping`` and ``EarlyStoppingReason``."""

from __future__ import annotations

import logging
import math
import warnings
from enum import Enum
from typing import Any, Optional

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException

import mlx.core as mx

from cnn.errors import MonitorError

log = logging.getLogger(__name__)


class EarlyStoppingReason(Enum):
    """Why ``EarlyStopping`` stopped the run (Lightning's enum; its value is what a checkpoint stores)."""

    NOT_STOPPED = 0
    STOPPING_THRESHOLD = 1
    DIVERGENCE_THRESHOLD = 2
    PATIENCE_EXHAUSTED = 3
    NON_FINITE_METRIC = 4


class EarlyStopping(Callback):
    """Stop when ``monitor`` stops improving (Lightning's ``EarlyStopping``: same defaults, order, messages and
    state; scores kept as ``mx.array`` where Lightning keeps tensors).

    Checked at ``on_train_epoch_end`` when validation runs every epoch (Lightning's default), else at
    ``on_validation_end``; sets ``trainer.should_stop``, ``stopped_epoch``, ``stopping_reason`` and
    ``stopping_reason_message``. ``verbose`` logs each decision at INFO (``cnn.mx.lightning``'s logger, on stderr).
    """

    mode_dict = {"min": "lt", "max": "gt"}
    order_dict = {"min": "<", "max": ">"}

    def __init__(self, monitor: str, min_delta: float = 0.0, patience: int = 3, verbose: bool = False,
                 mode: str = "min", strict: bool = True, check_finite: bool = True,
                 stopping_threshold: Optional[float] = None, divergence_threshold: Optional[float] = None,
                 check_on_train_epoch_end: Optional[bool] = None, log_rank_zero_only: bool = False) -> None:
        if mode not in self.mode_dict:
            raise MisconfigurationException(f"`mode` can be {', '.join(self.mode_dict)}, got {mode}")
        self.monitor, self.patience, self.verbose, self.mode, self.strict = monitor, patience, verbose, mode, strict
        self.check_finite, self.stopping_threshold = check_finite, stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.min_delta = min_delta if mode == "max" else -min_delta  # Lightning flips the sign for "min"
        self.wait_count, self.stopped_epoch = 0, 0
        self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
        self.stopping_reason_message: Optional[str] = None
        self._check_on_train_epoch_end = check_on_train_epoch_end
        self.log_rank_zero_only = log_rank_zero_only
        self.best_score: Any = mx.array(math.inf if mode == "min" else -math.inf)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def monitor_op(self, a: Any, b: Any) -> bool:
        """``a`` better than ``b``: ``<`` for "min", ``>`` for "max" (Lightning's ``torch.lt``/``torch.gt``)."""
        a, b = float(a), float(b)
        return a < b if self.mode == "min" else a > b

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            # validation several times an epoch, or not every epoch: check after validation instead
            self._check_on_train_epoch_end = trainer.val_check_interval in (None, 1.0) and \
                trainer.check_val_every_n_epoch == 1

    def _validate_condition_metric(self, logs: dict[str, Any]) -> bool:
        """Lightning's: a missing ``monitor`` raises when ``strict`` (a ``MonitorError``, a ``RuntimeError`` as
        Lightning's), else is a ``RuntimeWarning`` when ``verbose``; either way no check this time."""
        if logs.get(self.monitor) is not None:
            return True
        message = (f"Early stopping conditioned on metric `{self.monitor}` which is not available. Pass in or "
                   "modify your `EarlyStopping` callback to use any of the following: `" + "`, `".join(logs) + "`")
        if self.strict:
            raise MonitorError(message)
        if self.verbose:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"wait_count": self.wait_count, "stopped_epoch": self.stopped_epoch, "best_score": self.best_score,
                "patience": self.patience, "stopping_reason": self.stopping_reason.value,
                "stopping_reason_message": self.stopping_reason_message}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count, self.stopped_epoch = state_dict["wait_count"], state_dict["stopped_epoch"]
        self.best_score, self.patience = state_dict["best_score"], state_dict["patience"]
        self.stopping_reason = EarlyStoppingReason(state_dict.get("stopping_reason",
                                                                  EarlyStoppingReason.NOT_STOPPED.value))
        self.stopping_reason_message = state_dict.get("stopping_reason_message")

    def _should_skip_check(self, trainer) -> bool:
        return trainer.state.fn != "fit" or trainer.sanity_checking

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._check_on_train_epoch_end and not self._should_skip_check(trainer):
            self._run_early_stopping_check(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._check_on_train_epoch_end and not self._should_skip_check(trainer):
            self._run_early_stopping_check(trainer)

    def _run_early_stopping_check(self, trainer) -> None:
        logs = trainer.callback_metrics
        if getattr(trainer, "fast_dev_run", False) or not self._validate_condition_metric(logs):
            return
        current = logs[self.monitor]
        current = current.squeeze() if isinstance(current, mx.array) else current
        should_stop, reason = self._evaluate_stopping_criteria(current)
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            self._log_info(trainer, reason, self.log_rank_zero_only)

    def _evaluate_stopping_criteria(self, current: Any) -> tuple[bool, Optional[str]]:
        should_stop, reason = False, None
        value = float(current)
        if self.check_finite and not math.isfinite(value):
            should_stop, self.stopping_reason = True, EarlyStoppingReason.NON_FINITE_METRIC
            reason = (f"Monitored metric {self.monitor} = {_shown(current)} is not finite. Previous best value was "
                      f"{float(self.best_score):.3f}. Signaling Trainer to stop.")
        elif self.stopping_threshold is not None and self.monitor_op(value, self.stopping_threshold):
            should_stop, self.stopping_reason = True, EarlyStoppingReason.STOPPING_THRESHOLD
            reason = (f"Stopping threshold reached: {self.monitor} = {_shown(current)} {self.order_dict[self.mode]} "
                      f"{self.stopping_threshold}. Signaling Trainer to stop.")
        elif self.divergence_threshold is not None and self.monitor_op(-value, -self.divergence_threshold):
            should_stop, self.stopping_reason = True, EarlyStoppingReason.DIVERGENCE_THRESHOLD
            reason = (f"Divergence threshold reached: {self.monitor} = {_shown(current)} "
                      f"{self.order_dict[self.mode]} {self.divergence_threshold}. Signaling Trainer to stop.")
        elif self.monitor_op(value - self.min_delta, self.best_score):
            reason = self._improvement_message(value)
            self.best_score, self.wait_count = current, 0
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                should_stop, self.stopping_reason = True, EarlyStoppingReason.PATIENCE_EXHAUSTED
                reason = (f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records. "
                          f"Best score: {float(self.best_score):.3f}. Signaling Trainer to stop.")
        return should_stop, reason

    def _improvement_message(self, current: float) -> str:
        best = float(self.best_score)
        if math.isfinite(best):
            return (f"Metric {self.monitor} improved by {abs(best - current):.3f} >= min_delta = "
                    f"{abs(self.min_delta)}. New best score: {current:.3f}")
        return f"Metric {self.monitor} improved. New best score: {current:.3f}"

    @staticmethod
    def _log_info(trainer: Any, message: str, log_rank_zero_only: bool) -> None:
        """``message`` at INFO, prefixed ``[rank: N]`` in a run of several processes; with
        ``log_rank_zero_only`` only rank zero's."""
        rank = trainer.global_rank if trainer.world_size > 1 else None
        message = message if rank is None else f"[rank: {rank}] {message}"
        if rank is None or not log_rank_zero_only or rank == 0:
            log.info(message)


def _shown(value: Any) -> Any:
    return value.item() if isinstance(value, mx.array) and value.size == 1 else value
