"""Mirror of lightning.pytorch.core.optimizer: what ``configure_optimizers`` may return, the scheduler config
(Lightning's ``LRSchedulerConfig``) and the optimizer wrapper ``self.optimizers()`` returns (``LightningOptimizer``).

``configure_optimizers()`` may return an ``mlx.optimizers.Optimizer`` (its learning rate may be an MLX
schedule of the step), ``{"optimizer": opt, "lr_scheduler": fn | {"scheduler": fn, "interval": "epoch"|"step",
"frequency": 1, "name": None}}``, ``([opt], [fn])`` or, under manual optimization, several of them, where
``fn(n) -> lr`` gives the rate after ``n`` scheduler steps (stepped like Lightning: "epoch" after the last batch
of each epoch, "step" after each batch).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Optional

from cnn.mx.lightning.trainer.call import call_callback_hooks, call_lightning_module_hook
from cnn.mx.lightning.utilities.mlx_internals import learning_rate_schedule

import mlx.optimizers as optim


@dataclass
class LRSchedulerConfig:
    """``lr = scheduler(n)`` after the n-th scheduler step (``interval`` "epoch" or "step"), like a torch scheduler
    (stepped by the trainer where Lightning steps it: "epoch" after the last batch of an epoch, "step" per batch)."""

    scheduler: Callable[[int], Any]
    optimizer: Any
    interval: str = "epoch"
    frequency: int = 1
    name: Optional[str] = None
    last_epoch: int = 0  # number of scheduler steps taken (torch's ``last_epoch``)

    def step(self) -> None:
        """One scheduler step (torch's ``scheduler.step()``): the trainer calls it under automatic optimization,
        the module's ``training_step`` under manual optimization (``self.lr_schedulers()``)."""
        self.last_epoch += 1
        self.optimizer.learning_rate = float(self.scheduler(self.last_epoch))


class LightningOptimizer:
    """Lightning's ``LightningOptimizer`` for an MLX optimizer: what ``self.optimizers()`` returns. It is the MLX
    optimizer (``isinstance(opt, optim.Adam)`` holds, and reading or setting ``learning_rate``, ``state``, ``step``
    ... reaches the wrapped one, ``optimizer``) with Lightning's step around MLX's update:

    * ``update(module, gradients)`` (Lightning's ``opt.step()``): ``on_before_optimizer_step(optimizer)`` of the
      callbacks, then of the module, with the wrapped MLX optimizer as argument (Lightning passes the torch one)
      and ``trainer.gradients`` holding ``gradients``; then MLX's ``update``. Under manual optimization the loop
      sets ``step_context`` so the step is profiled (``optimizer_step``) and counted in ``global_step`` as soon
      as it is taken, as Lightning counts it.
    * ``step(closure=optimizer_closure)`` (automatic optimization, in ``LightningModule.optimizer_step``): the
      closure runs ``training_step`` and its backward, then ``on_before_optimizer_step``,
      ``configure_gradient_clipping`` and MLX's update of the module (``trainer.strategy.optimizer_step``); the
      step counts in ``global_step``. Without a closure (manual optimization) it is refused in one line: MLX keeps
      no ``.grad`` to step with, ``update(module, gradients)`` is that step.
    * ``zero_grad()``: nothing, and no hook, as Lightning's ``opt.zero_grad()`` under manual optimization calls
      none (``on_before_zero_grad`` belongs to the automatic step); MLX's gradients are values, never accumulated.

    ``step`` is both: called, Lightning's ``step(closure=...)``; read, MLX's step counter (``opt.step.item()``,
    ``int(opt.step)``; the ``mx.array`` itself is ``opt.optimizer.step``).
    """

    def __init__(self, optimizer: optim.Optimizer, trainer: Any) -> None:
        # object.__setattr__: every other attribute written to the wrapper goes to the wrapped optimizer.
        object.__setattr__(self, "_optimizer", optimizer)
        object.__setattr__(self, "_trainer", trainer)
        object.__setattr__(self, "step_context", nullcontext)
        # the wrapped object's class as a base, so that isinstance checks hold (Lightning does the same)
        object.__setattr__(self, "__class__", type(f"Lightning{type(optimizer).__name__}",
                                                   (LightningOptimizer, type(optimizer)), {}))

    @property
    def optimizer(self) -> optim.Optimizer:
        """The wrapped MLX optimizer."""
        return self._optimizer

    @property
    def trainer(self) -> Any:
        """The trainer whose hooks ``update`` calls."""
        return self._trainer

    def update(self, model: Any, gradients: Any) -> None:
        """One optimizer step of ``model`` (the module or the sub-module ``gradients`` belong to), after
        ``on_before_optimizer_step``."""
        trainer = self._trainer
        context: Callable[[], AbstractContextManager] = self.step_context
        with context():
            previous, trainer.gradients = trainer.gradients, gradients
            try:
                call_callback_hooks(trainer, "on_before_optimizer_step", self._optimizer)
                call_lightning_module_hook(trainer, "on_before_optimizer_step", self._optimizer)
            finally:
                trainer.gradients = previous
            self._optimizer.update(model, gradients)

    @property
    def step(self) -> "OptimizerStep":
        """Lightning's ``step(closure=...)`` when called, MLX's step counter when read (see the class docstring)."""
        return OptimizerStep(self)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing: MLX's gradients are values returned by ``nn.value_and_grad``, never accumulated in place."""

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_optimizer"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in vars(self):  # the wrapper's own (step_context)
            object.__setattr__(self, name, value)
        else:
            setattr(self._optimizer, name, value)


class OptimizerStep:
    """``LightningOptimizer.step``: Lightning's method when called (returns the closure's loss), and, read, the
    wrapped MLX optimizer's step counter (its attributes, ``int()``, ``float()``, ``==``)."""

    def __init__(self, wrapper: LightningOptimizer) -> None:
        self._wrapper = wrapper

    def __call__(self, closure: Optional[Callable[[], Any]] = None, **kwargs: Any) -> Any:
        if closure is None:
            raise ValueError("LightningOptimizer.step() needs the closure LightningModule.optimizer_step is given "
                             "(MLX keeps no .grad to step with); under manual optimization call "
                             "opt.update(module, grads)")
        wrapper = self._wrapper
        context: Callable[[], AbstractContextManager] = wrapper.step_context
        with context():
            return wrapper.trainer.strategy.optimizer_step(wrapper.optimizer, closure, **kwargs)

    @property
    def _counter(self) -> Any:
        return self._wrapper.optimizer.step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._counter, name)

    def __int__(self) -> int:
        return int(self._counter.item())

    def __index__(self) -> int:
        return int(self)

    def __float__(self) -> float:
        return float(self._counter.item())

    def __eq__(self, other: Any) -> Any:
        return self._counter == other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return repr(self._counter)


def lightning_optimizers(trainer: Any, cached: list[LightningOptimizer]) -> list[LightningOptimizer]:
    """``trainer.optimizers`` wrapped (Lightning's ``strategy._lightning_optimizers``): the ``cached`` wrappers
    while they wrap exactly those optimizers for this trainer, new ones otherwise."""
    opts = trainer.optimizers
    if len(cached) == len(opts) and all(w.optimizer is opt and w.trainer is trainer for w, opt in zip(cached, opts)):
        return cached
    return [LightningOptimizer(opt, trainer) for opt in opts]


def _scheduler_config(sched: Any, opt: Any) -> LRSchedulerConfig:
    cfg = sched if isinstance(sched, dict) else {"scheduler": sched}
    if cfg.get("interval", "epoch") not in ("epoch", "step") or "monitor" in cfg:
        raise ValueError("lr_scheduler: only interval 'epoch'/'step' callables are supported (no plateau)")
    config = LRSchedulerConfig(cfg["scheduler"], opt, cfg.get("interval", "epoch"), cfg.get("frequency", 1),
                               cfg.get("name"))
    opt.learning_rate = float(config.scheduler(0))
    return config


def parse_optimizers(out: Any) -> tuple[list[Any], list[LRSchedulerConfig]]:
    """Accept what ``configure_optimizers`` may return (Lightning's forms): an optimizer; a list or tuple of
    optimizers; ``([optimizers], [fn, ...])`` (scheduler ``i`` drives optimizer ``i``); ``{"optimizer": opt,
    "lr_scheduler": fn | {"scheduler": fn, "interval": ..., "frequency": ..., "name": ...}}``; or a list of such
    dicts. ``fn(n) -> lr``; the initial rate becomes ``fn(0)``. Returns the optimizers and the scheduler configs."""
    pairs: list[tuple[Any, Any]]
    if isinstance(out, dict):
        pairs = [(out["optimizer"], out.get("lr_scheduler"))]
    elif isinstance(out, (list, tuple)) and len(out) == 2 and isinstance(out[0], (list, tuple)):
        opts, scheds = out
        if len(scheds) > len(opts):
            raise ValueError("configure_optimizers() returned more lr schedulers than optimizers")
        pairs = [(opt, scheds[i] if i < len(scheds) else None) for i, opt in enumerate(opts)]
    elif isinstance(out, (list, tuple)):
        pairs = [(o["optimizer"], o.get("lr_scheduler")) if isinstance(o, dict) else (o, None) for o in out]
    else:
        pairs = [(out, None)]
    for opt, _ in pairs:
        if not isinstance(opt, optim.Optimizer):
            raise ValueError(f"configure_optimizers() must return mlx.optimizers.Optimizer(s), got {type(opt)}")
    return [opt for opt, _ in pairs], [_scheduler_config(sched, opt) for opt, sched in pairs if sched is not None]


def next_learning_rate(optimizer: Any) -> float:
    """The learning rate ``optimizer``'s next update will use (an MLX schedule evaluates at the current step)."""
    schedule = learning_rate_schedule(optimizer)
    optimizer = getattr(optimizer, "optimizer", optimizer)  # MLX's step counter, also behind the wrapper
    return float(schedule(optimizer.step)) if schedule is not None else float(optimizer.learning_rate)


def configure_optimizers(trainer: Any) -> tuple[list[Any], list[LRSchedulerConfig]]:
    """Lightning's ``_init_optimizers_and_lr_schedulers``: the module's ``configure_optimizers()``, parsed. Under
    automatic optimization there must be one optimizer (Lightning 2.x's rule), its state initialized now (the
    compiled step captures that exact dict object); under manual optimization each optimizer initializes its state
    at its first ``update``, for the parameters it is given."""
    opts, configs = parse_optimizers(call_lightning_module_hook(trainer, "configure_optimizers"))
    model = trainer.lightning_module
    if model.automatic_optimization:
        if len(opts) > 1:
            raise RuntimeError("Training with multiple optimizers is only supported with manual optimization. Set "
                               "`self.automatic_optimization = False`, then access your optimizers in "
                               "`training_step` with `opt1, opt2, ... = self.optimizers()`.")
        opts[0].init(model.trainable_parameters())
    return opts, configs
