"""Mirror of lightning.pytorch.core.optimizer: what ``configure_optimizers`` may return, and the
scheduler config (Lightning's ``LRSchedulerConfig``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

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
