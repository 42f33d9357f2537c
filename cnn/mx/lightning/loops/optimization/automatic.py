"""Mirror of lightning.pytorch.loops.optimization.automatic: one training step under automatic optimization
(Lightning's ``_AutomaticOptimization``), its loss checked and its optimizer steps counted; the step itself
(forward, backward, optimizer update, compiled or eager) is the strategy's ``training_step``."""

from __future__ import annotations

import math
from typing import Any

from cnn.mx.lightning.loops.progress import OptimizerProgress
from cnn.mx.lightning.trainer.call import call_strategy_hook

import numpy as np
from mlx.utils import tree_flatten

from cnn.errors import NonFiniteGradientError, NonFiniteLossError


class AutomaticOptimization:
    """Lightning's ``_AutomaticOptimization``: one training step (forward, backward, optimizer update) through
    ``trainer.strategy``, its loss checked; owns :class:`OptimizerProgress` (``optim_progress``).

    A non-finite loss raises :class:`~cnn.errors.NonFiniteLossError` (on every rank at the same batch); with
    ``detect_anomaly`` the first non-finite gradient raises :class:`~cnn.errors.NonFiniteGradientError` naming its
    parameter; both before any checkpoint of that step is written.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.optim_progress = OptimizerProgress()

    def reset(self) -> None:
        self.optim_progress = OptimizerProgress()

    def run(self, batch: Any, batch_idx: int, accumulating: bool) -> dict[str, Any]:
        """The step of ``batch``; ``accumulating``: only add its gradients (no optimizer step)."""
        trainer = self.trainer
        loss, logs, extra, finite_grads, metas = call_strategy_hook(
            trainer, "training_step", batch, batch_idx, trainer.accumulate_grad_batches, step=not accumulating)
        loss_value = loss.item()
        finite, where = math.isfinite(loss_value), ""
        if trainer.world_size > 1:  # one small all-reduce: every rank stops at the same batch, for a NaN or a signal
            signals = trainer.signal_connector
            bad, stop = trainer.strategy.all_sum([not finite, signals.received is not None])
            where = f" on rank {trainer.global_rank} (not finite on {int(bad)} of {trainer.world_size} ranks)"
            finite = finite and not bad
            signals.agree(bool(stop))
        if not finite:
            raise NonFiniteLossError(f"training loss is {loss_value}{where} at epoch {trainer.current_epoch}, "
                                     f"batch {batch_idx} (global step {self.optim_progress.steps}); "
                                     "stopped without writing a checkpoint")
        if trainer.detect_anomaly and not bool(finite_grads.all().item()):
            names = [name for name, _ in tree_flatten(trainer.lightning_module.trainable_parameters())]
            name = names[int(np.argmin(np.array(finite_grads)))]
            raise NonFiniteGradientError(f"detect_anomaly: the gradient of {name} is not finite at epoch "
                                         f"{trainer.current_epoch}, batch {batch_idx} (global step "
                                         f"{self.optim_progress.steps}); stopped without writing a checkpoint")
        if not accumulating:
            self.optim_progress.steps += 1
        trainer.logger_connector.feed(logs, metas)
        return {"loss": loss, **extra}
