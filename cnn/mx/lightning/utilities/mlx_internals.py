"""Mirror of lightning.pytorch.utilities (imports of a framework's internals): the one place the MLX mirror reads
MLX's private members, each named with the MLX versions it was read from.

``mlx.optimizers.Optimizer._schedulers`` (read from mlx 0.32.4; pyproject.toml pins ``mlx>=0.32,<0.33``):
``{"learning_rate": schedule}`` when the optimizer was built with a schedule
(``Adam(learning_rate=optim.cosine_decay(...))``); MLX offers no public way to read the schedule, which the next
update's learning rate depends on. ``tests/mx/lightning/test_mx_lightning_layout.py`` fails when a new MLX drops it.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

SCHEDULERS = "_schedulers"


def learning_rate_schedule(optimizer: Any) -> Optional[Callable[[Any], Any]]:
    """The MLX schedule of ``optimizer``'s learning rate (a function of the step), ``None`` when it has none."""
    return getattr(optimizer, SCHEDULERS).get("learning_rate")


def remove_learning_rate_schedule(optimizer: Any) -> None:
    """Drop ``optimizer``'s MLX learning-rate schedule: the rate set next stays (``StochasticWeightAveraging``)."""
    getattr(optimizer, SCHEDULERS).pop("learning_rate", None)
