"""Mirror of lightning.pytorch.loops.optimization.manual: ``training_step`` steps its own optimizers
(``self.automatic_optimization = False``), Lightning's ``_ManualOptimization``.

What replaces Lightning's calls, since MLX has no autograd tape and no ``backward()``:

* ``self.manual_backward(loss)`` -> ``loss, grads = self.manual_backward(loss_fn, *args, module=module)``: the
  function and its arguments instead of the loss, ``nn.value_and_grad`` inside, between ``on_before_backward(loss)``
  and ``on_after_backward`` (``trainer.strategy.backward``). ``module`` may be a sub-module (a GAN's generator), whose
  parameters the gradients then cover. Plain ``nn.value_and_grad(module, loss_fn)(...)`` works too, without hooks.
* ``opt.step()`` -> ``opt.update(module, grads)`` on ``self.optimizers()``
  (:class:`~cnn.mx.lightning.core.optimizer.LightningOptimizer`): ``on_before_optimizer_step(optimizer)``, then
  MLX's update.
* ``opt.zero_grad()`` -> the same call, which does nothing and, as in Lightning, calls no hook: gradients are values
  returned by ``value_and_grad``, never accumulated in place.
* ``self.clip_gradients(opt, ...)`` -> ``optim.clip_grad_norm(grads, max_norm)`` before ``update``.
* ``sch.step()`` on ``self.lr_schedulers()`` -> the same call
  (:class:`~cnn.mx.lightning.core.optimizer.LRSchedulerConfig`).

So a step written as Lightning's sees Lightning 2.6's hooks in its order: per ``manual_backward``
``on_before_backward``, ``on_after_backward``; per ``update`` ``on_before_optimizer_step``; each on the callbacks,
then on the module. ``on_before_zero_grad`` is not called under manual optimization (nor is it by Lightning).

``global_step`` counts optimizer steps as Lightning defines it: every ``update`` of an optimizer from
``self.optimizers()`` counts one, when it is taken (two optimizers each stepping once a batch advance it by two);
an MLX optimizer stepped directly (``self.optimizers(use_pl_optimizer=False)``) is not counted, as in Lightning.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

from cnn.mx.lightning.loops.progress import OptimizerProgress
from cnn.mx.lightning.trainer.call import call_strategy_hook
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException

import mlx.core as mx


def verify_manual_optimization_support(trainer: Any) -> None:
    """Lightning's ``__verify_manual_optimization_support``: the Trainer flags that act on the automatic step
    are refused, in one line each."""
    if trainer.gradient_clip_val:
        raise ValueError(f"Automatic gradient clipping is not supported for manual optimization. Remove "
                         f"`Trainer(gradient_clip_val={trainer.gradient_clip_val})` or switch to automatic "
                         "optimization.")
    if trainer.accumulate_grad_batches != 1:
        raise ValueError(f"Automatic gradient accumulation is not supported for manual optimization. Remove "
                         f"`Trainer(accumulate_grad_batches={trainer.accumulate_grad_batches})` or switch to "
                         "automatic optimization.")
    if trainer.precision_plugin.scaler is not None or trainer.precision in ("bf16-mixed", "16-mixed"):
        raise ValueError(f"precision={trainer.precision!r} casts the automatic step only; with manual optimization "
                         "use '32-true' or '64-true' and cast inside training_step")


def from_training_step_output(output: Any) -> dict[str, Any]:
    """Lightning's ``ManualResult.from_training_step_output``: the outputs ``on_train_batch_end`` gets (a dict as
    returned, ``{"loss": output}`` for an array, ``{}`` for ``None``); anything else is refused in Lightning's
    words."""
    if isinstance(output, dict):
        return dict(output)
    if isinstance(output, mx.array):
        return {"loss": output}
    if output is not None:
        raise MisconfigurationException("In manual optimization, `training_step` must either return a Tensor or have "
                                        "no return.")
    return {}


class ManualOptimization:
    """Runs ``training_step`` eagerly (``Trainer(compile=...)`` does not apply to it: compile your own step with
    ``mx.compile`` if you want one), feeds what it logged, and counts the optimizer steps it takes through
    ``self.optimizers()`` (``optim_step_progress.steps``, the trainer's ``global_step`` under manual optimization).
    Returns the step's output as a dict (``{"loss": loss}`` for a bare value, ``{}`` for ``None``), as Lightning
    passes it to ``on_train_batch_end``."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.optim_step_progress = OptimizerProgress()

    def reset(self) -> None:
        self.optim_step_progress = OptimizerProgress()

    @contextmanager
    def optimizer_step(self) -> Iterator[None]:
        """Around one ``LightningOptimizer.update`` (Lightning's ``_on_before_step``/``_on_after_step``): profiled
        as ``optimizer_step``, counted once it is done."""
        with self.trainer.profiler.profile("optimizer_step"):
            yield
        self.optim_step_progress.steps += 1

    def run(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        trainer = self.trainer
        model, lc = trainer.lightning_module, trainer.logger_connector
        wrapped = model.optimizers()
        wrapped = wrapped if isinstance(wrapped, list) else [wrapped]
        for opt in wrapped:  # Lightning's on_run_start: the step counted by this loop
            opt.step_context = self.optimizer_step
        lc.capture = {}
        # the hook around the step (optimizer_step) is the current one again after it
        previous_fx, model.current_fx_name = model.current_fx_name, "training_step"
        try:
            out = call_strategy_hook(trainer, "training_step", batch, batch_idx)
            captured = dict(lc.capture)
        finally:
            model.current_fx_name = previous_fx
            lc.capture = None
            for opt in wrapped:  # Lightning's on_run_end
                opt.step_context = nullcontext
        outputs = from_training_step_output(out)
        logs = {k: v for k, (_, v) in captured.items()}
        mx.eval(outputs, logs, model.state, [opt.state for opt in trainer.optimizers])
        lc.feed(logs, {k: m for k, (m, _) in captured.items()})
        return outputs
