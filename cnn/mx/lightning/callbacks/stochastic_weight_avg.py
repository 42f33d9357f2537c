"""Mirror of lightning.pytorch.callbacks.stochastic_weight_avg: ``StochasticWeightAveraging``."""

from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Union

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.core.optimizer import LRSchedulerConfig, next_learning_rate
from cnn.mx.lightning.utilities.mlx_internals import remove_learning_rate_schedule

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from cnn.errors import ConfigError


def _average(averaged: mx.array, current: mx.array, n_averaged: int) -> mx.array:
    """The running mean of the weights (torch's ``swa_utils`` default)."""
    return averaged + (current - averaged) / (n_averaged + 1)


class StochasticWeightAveraging(Callback):
    """Lightning's ``StochasticWeightAveraging``: from epoch ``swa_epoch_start`` on, the learning rate
    anneals from its current value to ``swa_lrs`` over ``annealing_epochs`` epochs (torch's
    ``SWALR``, stepped after each epoch, in place of the module's schedulers), the trainable weights
    are averaged at the start of every epoch up to the last, and the average replaces the weights
    when training ends (``on_train_end``, after the last validation, as in Lightning).

    Args:
        swa_lrs: the SWA learning rate (a float, or a list of one: the MLX trainer has one optimizer).
        swa_epoch_start: the epoch (counted from 1) SWA starts at, or a fraction of ``max_epochs``.
        annealing_epochs: epochs of the anneal to ``swa_lrs``.
        annealing_strategy: ``"cos"`` or ``"linear"``.
        avg_fn: ``avg_fn(averaged, current, n_averaged) -> averaged``; the running mean by default.
        device: accepted for Lightning parity; MLX has one memory for every device.

    Models with batch normalisation are refused (Lightning recomputes their statistics in one more
    epoch; this mirror does not). Resuming inside the SWA epochs restarts the average (a warning).
    """

    def __init__(self, swa_lrs: Union[float, list[float]], swa_epoch_start: Union[int, float] = 0.8,
                 annealing_epochs: int = 10, annealing_strategy: str = "cos",
                 avg_fn: Optional[Callable[[mx.array, mx.array, int], mx.array]] = None,
                 device: Optional[str] = None) -> None:
        if isinstance(swa_epoch_start, int) and swa_epoch_start < 1 \
                or isinstance(swa_epoch_start, float) and not 0 <= swa_epoch_start <= 1:
            raise ValueError("SWA: `swa_epoch_start` should be an int >= 1 or a float in [0, 1]; "
                             f"got {swa_epoch_start!r}")
        lrs = swa_lrs if isinstance(swa_lrs, list) else [swa_lrs]
        if len(lrs) != 1 or not all(isinstance(lr, (int, float)) and lr > 0 for lr in lrs):
            raise ValueError(f"SWA: `swa_lrs` should be one positive float (one optimizer); got {swa_lrs!r}")
        if annealing_strategy not in ("cos", "linear"):
            raise ValueError(f"SWA: `annealing_strategy` should be 'cos' or 'linear'; got {annealing_strategy!r}")
        if not isinstance(annealing_epochs, int) or annealing_epochs < 0:
            raise ValueError(f"SWA: `annealing_epochs` should be an int >= 0; got {annealing_epochs!r}")
        self._swa_epoch_start = swa_epoch_start
        self._swa_lr = float(lrs[0])
        self._annealing_epochs, self._annealing_strategy = annealing_epochs, annealing_strategy
        self._avg_fn = avg_fn or _average
        self._average: Optional[dict[str, mx.array]] = None
        self.n_averaged = 0
        self._latest_update_epoch = -1
        self._max_epochs = -1

    @property
    def swa_start(self) -> int:
        return max(int(self._swa_epoch_start) - 1, 0)  # 0-based

    @property
    def swa_end(self) -> float:
        return math.inf if self._max_epochs == -1 else self._max_epochs - 1

    def on_fit_start(self, trainer, pl_module) -> None:
        if len(trainer.lr_scheduler_configs) > 1:
            raise ConfigError("SWA currently not supported for more than 1 `lr_scheduler`.")
        if isinstance(self._swa_epoch_start, float):
            if trainer.max_epochs == -1:
                raise ConfigError("SWA with `swa_epoch_start` as a float is not supported when `max_epochs=-1`.")
            self._swa_epoch_start = int(trainer.max_epochs * self._swa_epoch_start)
        if any(isinstance(m, nn.BatchNorm) for _, m in pl_module.named_modules()):
            raise ConfigError("StochasticWeightAveraging on MLX does not support batch normalisation layers")
        self._max_epochs = trainer.max_epochs

    def _annealed_lr(self, start_lr: float) -> Callable[[int], float]:
        """torch's ``SWALR`` as a function of the epochs stepped since SWA started."""
        def lr(n: int) -> float:
            n = max(1, n) if self._annealing_epochs == 0 else n
            t = max(0.0, min(1.0, n / max(1, self._annealing_epochs)))
            alpha = (1 - math.cos(math.pi * t)) / 2 if self._annealing_strategy == "cos" else t
            return self._swa_lr * alpha + start_lr * (1 - alpha)
        return lr

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch
        if self._average is None and self.swa_start <= epoch <= self.swa_end:
            if epoch != self.swa_start:
                warnings.warn("SWA is initializing after swa_start without any checkpoint data.", stacklevel=2)
            optimizer = trainer.optimizers[0]
            remove_learning_rate_schedule(optimizer)  # an MLX schedule of its own
            schedule = self._annealed_lr(next_learning_rate(optimizer))
            optimizer.learning_rate = schedule(0)
            trainer.lr_scheduler_configs[:] = [LRSchedulerConfig(schedule, optimizer, interval="epoch")]
            self._average = {}
        if self.swa_start <= epoch <= self.swa_end and epoch > self._latest_update_epoch:
            self._update(pl_module)
            self._latest_update_epoch = epoch

    def _update(self, pl_module) -> None:
        for name, value in tree_flatten(pl_module.trainable_parameters()):
            self._average[name] = value if self.n_averaged == 0 \
                else self._avg_fn(self._average[name], value, self.n_averaged)
        mx.eval(list(self._average.values()))
        self.n_averaged += 1

    def on_train_end(self, trainer, pl_module) -> None:
        if self._average and (trainer.current_epoch - 1 == self.swa_end or self._max_epochs == -1):
            pl_module.update(tree_unflatten(list(self._average.items())))
