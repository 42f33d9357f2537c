"""Mirror of lightning.pytorch.callbacks.lr_monitor: ``LearningRateMonitor``."""

from __future__ import annotations

from typing import Any, Optional

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.core.optimizer import next_learning_rate
from cnn.mx.lightning.utilities.mlx_internals import learning_rate_schedule

from cnn.errors import ConfigError


def _optimizer_name(opt: Any) -> str:
    """The MLX optimizer class a (possibly user-subclassed) optimizer derives from: a torch-faithful ``AdamL2(Adam)``
    is logged as ``lr-Adam`` like Lightning's ``torch.optim.Adam``."""
    for cls in type(opt).__mro__:
        if cls.__module__.startswith("mlx.optimizers"):
            return cls.__name__
    return type(opt).__name__


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
            raise ValueError("logging_interval should be `step` or `epoch` or `None`.")
        self.logging_interval, self.log_momentum, self.log_weight_decay = logging_interval, log_momentum, \
            log_weight_decay
        self.lrs: dict[str, list[float]] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.loggers:
            raise ConfigError("Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger.")
        self.lrs = {name: [] for name, _ in self._names(trainer)}

    def _names(self, trainer) -> list[tuple[str, Optional[str]]]:
        out = []
        for opt in trainer.optimizers:
            config = next((c for c in trainer.lr_scheduler_configs if c.optimizer is opt), None)
            name = config.name if config is not None and config.name else "lr-" + _optimizer_name(opt)
            interval = config.interval if config is not None else None
            if config is None and learning_rate_schedule(opt) is not None:
                interval = "step"  # an MLX schedule advances with every update, like a torch "step" scheduler
            out.append((name, interval))
        return out

    def _log(self, trainer, interval: str) -> None:
        stats = {}
        for (name, sched_interval), opt in zip(self._names(trainer), trainer.optimizers):
            if sched_interval is None or interval in (sched_interval, "any"):
                lr = next_learning_rate(opt)
                self.lrs.setdefault(name, []).append(lr)
                stats[name] = lr
                if self.log_weight_decay and "weight_decay" in opt.state:
                    stats[f"{name}-weight_decay"] = float(opt.state["weight_decay"])
                if self.log_momentum:
                    betas = getattr(opt, "betas", None)
                    stats[f"{name}-momentum"] = float(betas[0]) if betas else float(getattr(opt, "momentum", 0.0))
        if stats:
            trainer.logger_connector.callback.update(stats)
            for logger in trainer.loggers:
                logger.log_metrics(stats, step=trainer.fit_loop.epoch_loop.batches_that_stepped)

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        if trainer.logger_connector.should_update_logs() and self.logging_interval != "epoch":
            self._log(trainer, "step" if self.logging_interval is None else "any")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.logging_interval != "step":
            self._log(trainer, "epoch" if self.logging_interval is None else "any")
