"""The learning-rate schedule, evaluated on the host each step by both frameworks."""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine", "onecycle")

# onecycle: torch.optim.lr_scheduler.OneCycleLR's defaults, so the rate is the one torch users
# know (and tests can hold ours against theirs).
ONE_CYCLE_WARMUP = 0.3  # pct_start: the share of the steps spent rising to the peak
ONE_CYCLE_START_DIV = 25.0  # div_factor: the first rate is the peak / 25
ONE_CYCLE_END_DIV = 1e4  # final_div_factor: the last rate is the first / 10^4


def _cosine_between(start: float, end: float, progress: float) -> float:
    return end + (start - end) / 2.0 * (1.0 + math.cos(math.pi * progress))


def _one_cycle(step: int, total_steps: int, peak: float) -> float:
    first = peak / ONE_CYCLE_START_DIV
    last = first / ONE_CYCLE_END_DIV
    peak_step = float(ONE_CYCLE_WARMUP * total_steps) - 1  # torch's phase boundary
    final_step = total_steps - 1
    if step <= peak_step:
        return _cosine_between(first, peak, step / peak_step if peak_step > 0 else 1.0)
    return _cosine_between(peak, last, (step - peak_step) / (final_step - peak_step))


def learning_rate_at(step: int, total_steps: int, base_lr: float, schedule: str = "cosine",
                     warmup_fraction: float = 0.05) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``.

    ``constant``: ``base_lr`` throughout. ``cosine``: linear warm-up from ``base_lr / 10``
    over the first ``warmup_fraction`` of the steps, then half a cosine down to zero at
    ``total_steps``; a step past the end keeps the last value. Warm-up lets a large batch
    start at a high rate without diverging; the decay buys the last tenth of a percent.
    ``onecycle``: ``torch.optim.lr_scheduler.OneCycleLR`` with its defaults and no momentum
    cycling (``warmup_fraction`` does not apply): half a cosine up from ``base_lr / 25`` to
    ``base_lr`` over the first 30% of the steps, then half a cosine down to ``base_lr / 25e4``
    at the last step; a step past the end keeps the last value. A short run spends most of its
    steps near the peak rate, where it learns fastest, and still ends near zero.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}: choose one of {SCHEDULES}")
    if schedule == "constant" or total_steps <= 0:
        return base_lr
    step = min(step, total_steps - 1)
    if schedule == "onecycle":
        return _one_cycle(step, total_steps, base_lr)
    warmup = int(total_steps * warmup_fraction)
    if step < warmup:
        return base_lr * (0.1 + 0.9 * step / warmup)
    progress = (step - warmup) / max(1, total_steps - warmup)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
