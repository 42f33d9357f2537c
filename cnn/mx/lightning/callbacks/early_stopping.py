"""Mirror of lightning.pytorch.callbacks.early_stopping: ``EarlyStopping``."""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any, Optional

from cnn.mx.lightning.callbacks.callback import Callback

import mlx.core as mx

from cnn.errors import MonitorError


class EarlyStopping(Callback):
    """Stop when ``monitor`` stops improving (Lightning's ``EarlyStopping``: same defaults, order and state).

    Checked at ``on_train_epoch_end`` when validation runs every epoch (Lightning's default), else at
    ``on_validation_end``; sets ``trainer.should_stop``.
    """

    def __init__(self, monitor: str, min_delta: float = 0.0, patience: int = 3, verbose: bool = False,
                 mode: str = "min", strict: bool = True, check_finite: bool = True,
                 stopping_threshold: Optional[float] = None, divergence_threshold: Optional[float] = None,
                 check_on_train_epoch_end: Optional[bool] = None) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` can be min, max, got {mode}")
        self.monitor, self.patience, self.verbose, self.mode, self.strict = monitor, patience, verbose, mode, strict
        self.check_finite, self.stopping_threshold = check_finite, stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.min_delta = min_delta if mode == "max" else -min_delta  # Lightning flips the sign for "min"
        self.wait_count, self.stopped_epoch = 0, 0
        self.best_score = mx.array(math.inf if mode == "min" else -math.inf, dtype=mx.float32)  # Lightning's tensor
        self.stopping_reason_message: Optional[str] = None
        self._check_on_train_epoch_end = check_on_train_epoch_end

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            self._check_on_train_epoch_end = trainer.val_check_interval in (None, 1.0) and \
                trainer.check_val_every_n_epoch == 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._check_on_train_epoch_end and not self._skip(trainer):
            self._run_early_stopping_check(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._check_on_train_epoch_end and not self._skip(trainer):
            self._run_early_stopping_check(trainer)

    def _skip(self, trainer) -> bool:
        return trainer.state.fn != "fit" or trainer.sanity_checking

    def _run_early_stopping_check(self, trainer) -> None:
        logs = trainer.callback_metrics
        if getattr(trainer, "fast_dev_run", False) or not self._validate_condition_metric(logs):
            return
        current = float(logs[self.monitor])
        should_stop, reason = False, None
        if self.check_finite and not math.isfinite(current):
            should_stop, reason = True, f"Monitored metric {self.monitor} = {current} is not finite."
        elif self.stopping_threshold is not None and self._better(current, self.stopping_threshold):
            should_stop, reason = True, f"Stopping threshold reached: {self.monitor} = {current}."
        elif self.divergence_threshold is not None and self._better(-current, -self.divergence_threshold):
            should_stop, reason = True, f"Divergence threshold reached: {self.monitor} = {current}."
        elif self._better(current - self.min_delta, float(self.best_score.item())):
            self.best_score, self.wait_count = mx.array(current, dtype=mx.float32), 0
            reason = f"Metric {self.monitor} improved. New best score: {current:.3f}"
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                should_stop = True
                reason = (f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records. "
                          f"Best score: {self.best_score:.3f}. Signaling Trainer to stop.")
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            print(reason, file=sys.stderr)

    def _validate_condition_metric(self, logs: dict[str, Any]) -> bool:
        """Lightning's: a missing ``monitor`` raises when ``strict`` (a ``MonitorError``, a ``RuntimeError`` as
        Lightning's), else is a ``RuntimeWarning`` when ``verbose``; either way no check this time."""
        if self.monitor in logs:
            return True
        message = (f"Early stopping conditioned on metric `{self.monitor}` which is not available. Pass in or "
                   "modify your `EarlyStopping` callback to use any of the following: `" + "`, `".join(logs) + "`")
        if self.strict:
            raise MonitorError(message)
        if self.verbose:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"wait_count": self.wait_count, "stopped_epoch": self.stopped_epoch,
                "best_score": float(self.best_score.item()),
                "patience": self.patience, "stopping_reason_message": self.stopping_reason_message}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count, self.stopped_epoch = state_dict["wait_count"], state_dict["stopped_epoch"]
        self.best_score = mx.array(state_dict["best_score"], dtype=mx.float32)
        self.patience = state_dict["patience"]
        self.stopping_reason_message = state_dict.get("stopping_reason_message")
