"""The learning-rate schedule, evaluated on the host each step by both frameworks."""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine")


def learning_rate_at(step: int, total_steps: int, base_lr: float, schedule: str = "cosine",
                     warmup_fraction: float = 0.05) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``.

    ``constant``: ``base_lr`` throughout. ``cosine``: linear warm-up from ``base_lr / 10``
    over the first ``warmup_fraction`` of the steps, then half a cosine down to zero at
    ``total_steps``; a step past the end keeps the last value. Warm-up lets a large batch
    start at a high rate without diverging; the decay buys the last tenth of a percent.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}: choose one of {SCHEDULES}")
    if schedule == "constant" or total_steps <= 0:
        return base_lr
    step = min(step, total_steps - 1)
    warmup = int(total_steps * warmup_fraction)
    if step < warmup:
        return base_lr * (0.1 + 0.9 * step / warmup)
    progress = (step - warmup) / max(1, total_steps - warmup)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
