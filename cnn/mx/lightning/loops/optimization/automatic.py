"""Mirror of lightning.pytorch.loops.optimization.automatic: one training step under automatic optimization
(Lightning's ``_AutomaticOptimization``), its loss checked and its optimizer steps counted; the step itself
(forward, backward, optimizer update, compiled or eager) is the strategy's ``training_step``."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Optional

from cnn.mx.lightning.core.module import LightningModule
from cnn.mx.lightning.loops.progress import OptimizerProgress
from cnn.mx.lightning.trainer.call import call_hooks, call_lightning_module_hook, call_strategy_hook

import numpy as np
from mlx.utils import tree_flatten

from cnn.errors import NonFiniteGradientError, NonFiniteLossError

if TYPE_CHECKING:
    from cnn.mx.lightning.strategies.strategy import StepOutput


def wrapped_optimizer(trainer: Any) -> Any:
    """The one optimizer of automatic optimization in the wrapper ``self.optimizers()`` returns (Lightning's
    ``strategy._lightning_optimizers[0]``), through the base class's method: a module that overrides, wraps or logs
    from its ``optimizers()`` sees only the calls Lightning makes."""
    return LightningModule.optimizers(trainer.lightning_module)


class WarningCache(set):
    """Lightning's ``WarningCache``: each message warned once (until ``clear()``)."""

    def warn(self, message: str, stacklevel: int = 5) -> None:
        if message not in self:
            self.add(message)
            warnings.warn(message, UserWarning, stacklevel=stacklevel)


class Closure:
    """Lightning's ``Closure`` of one eager training step, called once (by ``optimizer.step(closure=...)`` inside
    ``LightningModule.optimizer_step``, or directly for a batch that only accumulates): the strategy's
    ``training_step`` (forward, with the gradients MLX computes with it), on an accumulation's first batch
    ``on_before_zero_grad`` and ``optimizer_zero_grad``, then the backward hooks around the gradients joining
    the sum the optimizer step applies. Returns the loss; ``result`` keeps the step's output. A ``training_step``
    that returned ``None`` gets Lightning's warning (once per message, :attr:`warning_cache`) and no backward: the
    optimizer step that follows applies only what earlier batches of the accumulation added (nothing, alone)."""

    warning_cache = WarningCache()

    def __init__(self, trainer: Any, batch: Any, batch_idx: int, step: bool) -> None:
        self.trainer, self.batch, self.batch_idx, self.step = trainer, batch, batch_idx, step
        self.result: Optional[StepOutput] = None

    def __call__(self) -> Any:
        trainer = self.trainer
        output = call_strategy_hook(trainer, "training_step", self.batch, self.batch_idx,
                                    trainer.accumulate_grad_batches, step=self.step)
        if output.loss is None and trainer.world_size > 1:
            raise RuntimeError("Skipping the `training_step` by returning None in distributed training is not "
                               "supported. It is recommended that you rewrite your training logic to avoid having "
                               "to skip the step in the first place.")
        if output.loss is None:
            self.warning_cache.warn("`training_step` returned `None`. If this was on purpose, ignore this warning...")
        if self.batch_idx % trainer.accumulate_grad_batches == 0:  # Lightning zeroes on an accumulation's first
            call_hooks(trainer, "on_before_zero_grad", trainer.optimizers[0])
            # the wrapper, whose zero_grad() a Lightning override calls (MLX's optimizers have none)
            call_lightning_module_hook(trainer, "optimizer_zero_grad", trainer.current_epoch, self.batch_idx,
                                       wrapped_optimizer(trainer))
        if output.loss is not None:
            trainer.strategy.add_gradients(output)
        self.result = output
        return output.loss

    def consume_result(self) -> StepOutput:
        if self.result is None:
            raise ValueError("The closure hasn't been executed. HINT: did you call `optimizer_closure()` in your "
                             "`optimizer_step` hook? It could also happen because the `optimizer.step(optimizer_"
                             "closure)` call did not execute it internally.")
        return self.result


class AutomaticOptimization:
    """Lightning's ``_AutomaticOptimization``: one training step (forward, backward, optimizer update) through
    ``trainer.strategy``, its loss checked; owns :class:`OptimizerProgress` (``optim_progress``).

    Eager, as Lightning's: a batch that steps calls ``LightningModule.optimizer_step(epoch, batch_idx, optimizer,
    optimizer_closure)`` with the :class:`~cnn.mx.lightning.core.optimizer.LightningOptimizer` and a
    :class:`Closure`, whose ``optimizer.step(closure=...)`` runs the closure and the update (counted in
    ``global_step`` after the hook returns, as Lightning counts it); a batch that only accumulates runs the
    closure. Compiled (``trainer.strategy.compiles_training_step``): the whole step is one call of the strategy,
    and falls back to eager when its trace fails.

    A non-finite loss raises :class:`~cnn.errors.NonFiniteLossError` (on every rank at the same batch); with
    ``detect_anomaly`` the first non-finite gradient raises :class:`~cnn.errors.NonFiniteGradientError` naming its
    parameter; both before any checkpoint of that step is written.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.optim_progress = OptimizerProgress()

    def reset(self) -> None:
        self.optim_progress = OptimizerProgress()

    def _run_eager(self, batch: Any, batch_idx: int, accumulating: bool) -> StepOutput:
        trainer = self.trainer
        closure = Closure(trainer, batch, batch_idx, step=not accumulating)
        if accumulating:
            closure()
        else:
            call_lightning_module_hook(trainer, "optimizer_step", trainer.current_epoch, batch_idx,
                                       wrapped_optimizer(trainer), closure)
        output = closure.consume_result()
        trainer.strategy.post_training_step(output)
        return output

    def run(self, optimizer: Any, batch_idx: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Lightning's ``run``: the step of ``kwargs["batch"]`` (``optimizer``: the one optimizer, stepped through
        ``trainer.strategy``); a batch the epoch loop accumulates only adds its gradients (no optimizer step).
        Returns the step's outputs, ``{}`` for a skipped batch."""
        trainer = self.trainer
        batch, accumulating = kwargs["batch"], trainer.fit_loop.epoch_loop.should_accumulate(batch_idx)
        steps, output = self.optim_progress.steps, None
        if trainer.strategy.compiles_training_step:
            output = call_strategy_hook(trainer, "training_step", batch, batch_idx, trainer.accumulate_grad_batches,
                                        step=not accumulating)
        if output is None:  # eager, or the trace failed
            output = self._run_eager(batch, batch_idx, accumulating)
        loss, finite_grads = output.loss, output.finite_grads
        if loss is None:  # training_step returned None: the batch is skipped (Lightning's empty outputs)
            if not accumulating:
                self.optim_progress.steps += 1
            trainer.logger_connector.feed(output.logs, output.metas)
            return {}
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
                                     f"batch {batch_idx} (global step {steps}); "
                                     "stopped without writing a checkpoint")
        if trainer.detect_anomaly and not bool(finite_grads.all().item()):
            names = [name for name, _ in tree_flatten(trainer.lightning_module.trainable_parameters())]
            name = names[int(np.argmin(np.array(finite_grads)))]
            raise NonFiniteGradientError(f"detect_anomaly: the gradient of {name} is not finite at epoch "
                                         f"{trainer.current_epoch}, batch {batch_idx} (global step "
                                         f"{steps}); stopped without writing a checkpoint")
        if not accumulating:  # as Lightning counts it: once optimizer_step returned (and here, its loss checked)
            self.optim_progress.steps += 1
        trainer.logger_connector.feed(output.logs, output.metas)
        return {"loss": loss, **output.extra}
