"""Mirror of lightning.pytorch.loops.optimization.manual: ``training_step`` steps its own optimizers
(``self.automatic_optimization = False``), Lightning's ``_ManualOptimization``.

What replaces Lightning's calls, since MLX has no autograd tape and no ``backward()``:

* ``self.manual_backward(loss)`` + ``opt.step()`` -> ``loss, grads = nn.value_and_grad(module, loss_fn)(...)``
  then ``opt.update(module, grads)``; ``module`` may be a sub-module (a GAN's generator), whose parameters that
  optimizer then owns.
* ``opt.zero_grad()`` -> nothing: gradients are values returned by ``value_and_grad``, never accumulated in place.
* ``self.clip_gradients(opt, ...)`` -> ``optim.clip_grad_norm(grads, max_norm)`` before ``update``.
* ``sch.step()`` on ``self.lr_schedulers()`` -> the same call
  (:class:`~cnn.mx.lightning.core.optimizer.LRSchedulerConfig`).

``global_step`` counts optimizer steps as Lightning defines it: every ``update`` of every optimizer counts one (two
optimizers each stepping once a batch advance it by two). It is read from each MLX optimizer's own ``step`` counter
after ``training_step`` returns.
"""

from __future__ import annotations

from typing import Any

from cnn.mx.lightning.loops.progress import OptimizerProgress

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


class ManualOptimization:
    """Runs ``training_step`` eagerly (``Trainer(compile=...)`` does not apply to it: compile your own step with
    ``mx.compile`` if you want one), feeds what it logged, and counts the optimizer steps it took
    (``optim_step_progress.steps``, the trainer's ``global_step`` under manual optimization). Returns the step's
    output as a dict (``{"loss": loss}`` for a bare value, ``{}`` for ``None``), as Lightning passes it to
    ``on_train_batch_end``. The backward and optimizer hooks (``on_before_backward`` ...) are not called: no
    wrapper sits between the step and MLX's ``update``."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.optim_step_progress = OptimizerProgress()

    def reset(self) -> None:
        self.optim_step_progress = OptimizerProgress()

    def optimizer_steps(self) -> int:
        """The sum of every optimizer's own ``step`` counter (one per ``update``)."""
        return sum(int(opt.step.item()) for opt in self.trainer.optimizers)

    def run(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        trainer = self.trainer
        model, lc = trainer.lightning_module, trainer.logger_connector
        before = self.optimizer_steps()
        lc.capture = {}
        model.current_fx_name = "training_step"
        try:
            with trainer.profiler.profile("[Strategy]SingleDeviceStrategy.training_step"):
                out = model.training_step(batch, batch_idx)
            captured = dict(lc.capture)
        finally:
            model.current_fx_name = None
            lc.capture = None
        outputs = out if isinstance(out, dict) else {} if out is None else {"loss": out}
        logs = {k: v for k, (_, v) in captured.items()}
        mx.eval(outputs, logs, model.state, [opt.state for opt in trainer.optimizers])
        self.optim_step_progress.steps += self.optimizer_steps() - before
        lc.feed(logs, {k: m for k, (m, _) in captured.items()})
        return outputs
