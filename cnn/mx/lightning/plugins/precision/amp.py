"""Mirror of lightning.pytorch.plugins.precision.amp: the loss scaling of ``"16-mixed"`` (torch's
``GradScaler``), traced into the compiled step."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
from mlx.utils import tree_flatten


class LossScaler:
    """Dynamic loss scaling, torch's ``GradScaler`` defaults: start at 2**16, halve the scale and skip the optimizer
    step when a gradient is not finite, double it after 2000 finite steps in a row. Its arrays (``state``) live in
    the compiled step's state, so scaling and skipping happen inside the graph."""

    growth_factor, backoff_factor = 2.0, 0.5

    def __init__(self, init_scale: float = 2.0 ** 16, growth_interval: int = 2000) -> None:
        self.growth_interval = growth_interval
        self.state = {"scale": mx.array(init_scale, mx.float32), "good_steps": mx.array(0, mx.int32)}

    def advance(self, finite: mx.array) -> None:
        """Update the scale after a step whose gradients were all finite or not (traceable)."""
        scale, good = self.state["scale"], self.state["good_steps"] + 1
        grow = finite & (good >= self.growth_interval)
        self.state["scale"] = mx.where(finite, mx.where(grow, scale * self.growth_factor, scale),
                                       scale * self.backoff_factor)
        self.state["good_steps"] = mx.where(finite & ~grow, good, mx.zeros_like(good))

    def state_dict(self) -> dict[str, Any]:
        """``GradScaler.state_dict()``'s keys and meaning (what Lightning checkpoints as ``MixedPrecision``)."""
        return {"scale": float(self.state["scale"].item()), "growth_factor": self.growth_factor,
                "backoff_factor": self.backoff_factor, "growth_interval": self.growth_interval,
                "_growth_tracker": int(self.state["good_steps"].item())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # in place: the compiled training step holds this dict
        self.state["scale"] = mx.array(float(state["scale"]), mx.float32)
        self.state["good_steps"] = mx.array(int(state["_growth_tracker"]), mx.int32)


def all_finite(tree: Any) -> mx.array:
    """One boolean array: every value of every array in ``tree`` is finite."""
    flags = [mx.isfinite(a).all() for _, a in tree_flatten(tree) if isinstance(a, mx.array)]
    return mx.stack(flags).all() if flags else mx.array(True)
