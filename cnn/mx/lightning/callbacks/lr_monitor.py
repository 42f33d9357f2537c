"""Mirror of lightning.pytorch.callbacks.lr_monitor: ``LearningRateMonitor``."""

from __future__ import annotations

import warnings
from typing import Any, Optional

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.core.optimizer import next_learning_rate
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException
from cnn.mx.lightning.utilities.mlx_internals import learning_rate_schedule

import mlx.core as mx
import numpy as np


def _optimizer_name(opt: Any) -> str:
    """The MLX optimizer class a (possibly user-subclassed) optimizer derives from: a torch-faithful ``AdamL2(Adam)``
    is logged as ``lr-Adam`` like Lightning's ``torch.optim.Adam``."""
    for cls in type(opt).__mro__:
        if cls.__module__.startswith("mlx.optimizers"):
            return cls.__name__
    return type(opt).__name__


def _number(value: Any) -> float:
    """A rate as the user wrote it: MLX keeps it in float32, whose shortest decimal form is that number (0.1, where
    ``float`` gives 0.10000000149011612), as torch's param group holds the Python float."""
    return float(str(np.float32(value.item() if hasattr(value, "item") else value)))


class LearningRateMonitor(Callback):
    """Log ``lr-<OptimizerClass>`` (or the scheduler config's ``name``) like Lightning's ``LearningRateMonitor``;
    the class is the ``mlx.optimizers`` one the optimizer derives from.

    Scheduled optimizers are logged when their scheduler's interval matches (``"epoch"`` at ``on_train_epoch_start``,
    ``"step"`` at ``on_train_batch_start`` when the trainer would log); an MLX schedule inside the optimizer counts as
    a ``"step"`` scheduler; optimizers without scheduler are logged at both. The logged value is the rate the *next*
    update uses, written straight to the loggers at step ``batches_that_stepped`` (no ``epoch`` key), as Lightning.
    """

    def __init__(self, logging_interval: Optional[str] = None, log_momentum: bool = False,
                 log_weight_decay: bool = False) -> None:
        if logging_interval not in (None, "step", "epoch"):
            raise MisconfigurationException("logging_interval should be `step` or `epoch` or `None`.")
        self.logging_interval, self.log_momentum, self.log_weight_decay = logging_interval, log_momentum, \
            log_weight_decay
        self.lrs: dict[str, list[float]] = {}
        self.last_momentum_values: dict[str, Optional[float]] = {}
        self.last_weight_decay_values: dict[str, Optional[float]] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.loggers:
            raise MisconfigurationException("Cannot use `LearningRateMonitor` callback with `Trainer` that has no"
                                            " logger.")
        names = [name for name, _, _ in self._names(trainer)]
        opts = trainer.optimizers
        if self.log_momentum and any(not hasattr(o, "momentum") for o in opts) \
                and any(not hasattr(o, "betas") for o in opts):  # Lightning's test
            warnings.warn("You have set log_momentum=True, but some optimizers do not have momentum. This will log a"
                          " value 0 for the momentum.", RuntimeWarning, stacklevel=2)
        self.lrs = {name: [] for name in names}
        self.last_momentum_values = {f"{name}-momentum": None for name in names}
        self.last_weight_decay_values = {f"{name}-weight_decay": None for name in names}

    def _names(self, trainer) -> list[tuple[str, Optional[str], Any]]:
        """``(name, interval, optimizer)`` in Lightning's order: the optimizers with a scheduler (the scheduler
        config's ``name``, else ``lr-<Class>``), then the others (``lr-<Class>``); a second optimizer of one class
        ``lr-<Class>-1``, a third ``-2``..."""
        seen: dict[str, int] = {}

        def named(base: Optional[str], opt: Any) -> str:
            if base is not None:
                return base
            cls = _optimizer_name(opt)
            seen[cls] = seen.get(cls, 0) + 1
            return f"lr-{cls}" + (f"-{seen[cls] - 1}" if seen[cls] > 1 else "")

        out, scheduled = [], []
        for config in trainer.lr_scheduler_configs:
            scheduled.append(config.optimizer)
            out.append((named(config.name or None, config.optimizer), config.interval, config.optimizer))
        for opt in trainer.optimizers:
            if any(opt is o for o in scheduled):
                continue
            # an MLX schedule inside the optimizer advances with every update, like a torch "step" scheduler
            interval = "step" if learning_rate_schedule(opt) is not None else None
            out.append((named(None, opt), interval, opt))
        return out

    def _log(self, trainer, interval: str) -> None:
        stats = {}
        for name, sched_interval, opt in self._names(trainer):
            if sched_interval is None or interval in (sched_interval, "any"):
                lr = _number(next_learning_rate(opt))
                self.lrs.setdefault(name, []).append(lr)
                stats[name] = lr
                if self.log_momentum:
                    betas = getattr(opt, "betas", None)
                    momentum = betas[0] if betas is not None else getattr(opt, "momentum", 0.0)
                    stats[f"{name}-momentum"] = self.last_momentum_values[f"{name}-momentum"] = _number(momentum)
                if self.log_weight_decay:  # an MLX optimizer without weight decay has none, as torch's 0
                    stats[f"{name}-weight_decay"] = self.last_weight_decay_values[f"{name}-weight_decay"] = \
                        _number(getattr(opt, "weight_decay", 0.0))
        if stats:
            trainer.logger_connector.callback.update({k: mx.array(v, dtype=mx.float32) for k, v in stats.items()})
            for logger in trainer.loggers:
                logger.log_metrics(stats, step=trainer.fit_loop.epoch_loop.batches_that_stepped)

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        if trainer.logger_connector.should_update_logs() and self.logging_interval != "epoch":
            self._log(trainer, "step" if self.logging_interval is None else "any")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.logging_interval != "step":
            self._log(trainer, "epoch" if self.logging_interval is None else "any")
