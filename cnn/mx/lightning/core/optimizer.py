"""Mirror of lightning.pytorch.core.optimizer: what ``configure_optimizers`` may return, and the
scheduler config (Lightning's ``LRSchedulerConfig``).

``configure_optimizers()`` may return an ``mlx.optimizers.Optimizer`` (its learning rate may be an MLX schedule
of the step), ``{"optimizer": opt, "lr_scheduler": fn | {"scheduler": fn, "interval": "epoch"|"step",
"frequency": 1, "name": None}}`` or ``([opt], [fn])`` where ``fn(n) -> lr`` gives the rate after ``n`` scheduler
steps (stepped like Lightning: "epoch" after the last batch of each epoch, "step" after each batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from cnn.mx.lightning.trainer.call import call_lightning_module_hook
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


def parse_optimizers(out: Any) -> tuple[Any, list[LRSchedulerConfig]]:
    """Accept what ``configure_optimizers`` may return: an optimizer, ``[optimizer]``, ``([optimizer], [fn])`` or
    ``{"optimizer": opt, "lr_scheduler": fn | {"scheduler": fn, "interval": ..., "frequency": ..., "name": ...}}``.
    One optimizer only; ``fn(n) -> lr``; the initial rate becomes ``fn(0)``."""
    sched: Any = None
    if isinstance(out, dict):
        opt, sched = out["optimizer"], out.get("lr_scheduler")
    elif isinstance(out, (list, tuple)) and len(out) == 2 and isinstance(out[0], (list, tuple)):
        opts, scheds = out
        if len(opts) != 1 or len(scheds) > 1:
            raise ValueError("the MLX trainer supports exactly one optimizer and at most one lr scheduler")
        opt, sched = opts[0], (scheds[0] if scheds else None)
    else:
        opt = out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out
    if not isinstance(opt, optim.Optimizer):
        raise ValueError(f"configure_optimizers() must return an mlx.optimizers.Optimizer, got {type(opt)}")
    if sched is None:
        return opt, []
    cfg = sched if isinstance(sched, dict) else {"scheduler": sched}
    if cfg.get("interval", "epoch") not in ("epoch", "step") or "monitor" in cfg:
        raise ValueError("lr_scheduler: only interval 'epoch'/'step' callables are supported (no plateau)")
    config = LRSchedulerConfig(cfg["scheduler"], opt, cfg.get("interval", "epoch"), cfg.get("frequency", 1),
                               cfg.get("name"))
    opt.learning_rate = float(config.scheduler(0))
    return opt, [config]


def next_learning_rate(optimizer: Any) -> float:
    """The learning rate ``optimizer``'s next update will use (an MLX schedule evaluates at the current step)."""
    schedule = learning_rate_schedule(optimizer)
    return float(schedule(optimizer.step)) if schedule is not None else float(optimizer.learning_rate)


def configure_optimizers(trainer: Any) -> tuple[list[Any], list[LRSchedulerConfig]]:
    """Lightning's ``_init_optimizers_and_lr_schedulers``: the module's ``configure_optimizers()``, parsed, with
    the optimizer's state initialized now (the compiled step captures that exact dict object)."""
    opt, configs = parse_optimizers(call_lightning_module_hook(trainer, "configure_optimizers"))
    opt.init(trainer.lightning_module.trainable_parameters())
    return [opt], configs
