"""The learning-rate schedules of ``cnn.schedule``, which both frameworks' optimizers follow."""

from __future__ import annotations

import pytest
import torch

from cnn.schedule import SCHEDULES, learning_rate_at


def torch_one_cycle_rates(peak: float, total_steps: int) -> list[float]:
    """The rate of every step under torch's own ``OneCycleLR`` (defaults, no momentum cycling)."""
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([weight], lr=peak)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=total_steps,
                                                    cycle_momentum=False)
    rates = []
    for step in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if step < total_steps - 1:  # torch refuses to step past total_steps
            scheduler.step()
    return rates


@pytest.mark.parametrize("total_steps", [1, 2, 3, 7, 10, 211, 845])
def test_onecycle_is_torchs_one_cycle_lr_at_every_step(total_steps):
    ours = [learning_rate_at(step, total_steps, 0.01, "onecycle") for step in range(total_steps)]
    assert ours == pytest.approx(torch_one_cycle_rates(0.01, total_steps), rel=1e-12, abs=1e-15)


def test_onecycle_rises_from_a_25th_of_the_peak_to_the_peak_then_falls_to_nearly_zero():
    total = 1000
    rates = [learning_rate_at(step, total, 0.01, "onecycle") for step in range(total)]
    peak_step = rates.index(max(rates))
    assert rates[0] == pytest.approx(0.01 / 25)
    assert max(rates) == pytest.approx(0.01)
    assert peak_step == pytest.approx(0.3 * total, abs=1)
    assert all(a < b for a, b in zip(rates[:peak_step], rates[1:peak_step + 1]))
    assert all(a > b for a, b in zip(rates[peak_step:-1], rates[peak_step + 1:]))
    assert rates[-1] == pytest.approx(0.01 / 25 / 1e4)


def test_a_step_past_the_end_keeps_the_last_rate_in_every_schedule():
    for schedule in SCHEDULES:
        assert learning_rate_at(120, 100, 0.01, schedule) == learning_rate_at(99, 100, 0.01, schedule)


def test_an_unknown_schedule_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="onecycle"):
        learning_rate_at(0, 10, 0.01, "triangle")
