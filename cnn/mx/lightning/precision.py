"""Lightning's ``precision`` flag for MLX, which has no autocast: which dtype the steps compute in.

``"32-true"``: everything float32. ``"bf16-mixed"`` / ``"16-mixed"``: the weights and the optimizer state stay
float32 (the master copy); for each step the module's floating arrays are cast to bfloat16 / float16, the step
runs (forward, and backward through the casts, so the gradients arrive in float32), and the float32 arrays are put
back. ``"16-mixed"`` also scales the loss as torch's ``GradScaler`` does, since float16 gradients underflow.
``"64-true"``: the module is cast to float64 once, where MLX's device computes in float64 (the CPU).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional, Union

import mlx.core as mx
from mlx.utils import tree_flatten, tree_map, tree_unflatten

from cnn.errors import ConfigError

# Lightning's spellings of each precision, by what they mean here.
_ALIASES = {"32-true": ("32-true", "32", 32), "bf16-mixed": ("bf16-mixed", "bf16"),
            "16-mixed": ("16-mixed", "16", 16), "64-true": ("64-true", "64", 64)}
SUPPORTED = tuple(a for aliases in _ALIASES.values() for a in aliases)
_COMPUTE = {"32-true": None, "bf16-mixed": mx.bfloat16, "16-mixed": mx.float16, "64-true": None}
_LOW = (mx.float16, mx.bfloat16)


def _canonical(value: Union[str, int]) -> Optional[str]:
    return next((name for name, aliases in _ALIASES.items()
                 if any(value == a and type(value) is type(a) for a in aliases)), None)


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


class Precision:
    """The dtype policy of one ``Trainer(precision=...)`` (see the module docstring).

    ``compute_dtype``: what the steps compute in (``None``: the module's own dtypes); ``scaler``: a
    :class:`LossScaler` for ``"16-mixed"``, else ``None``. ``setup(module)`` once before training (casts to float64
    for ``"64-true"``; ``ConfigError`` on a device without float64); ``autocast(module)`` around each step.
    """

    def __init__(self, value: Union[str, int]) -> None:
        name = _canonical(value)
        if name is None:
            raise ValueError(f"Trainer(precision={value!r}) is not supported by the MLX trainer "
                             f"(supported: {', '.join(map(repr, SUPPORTED))})")
        self.name = name
        self.compute_dtype = _COMPUTE[name]
        self.scaler = LossScaler() if name == "16-mixed" else None

    def setup(self, module: Any) -> None:
        if self.name != "64-true":
            return
        if mx.default_device() != mx.cpu:
            raise ConfigError(f"Trainer(precision='64-true'): MLX computes in float64 on the CPU only, and this run is "
                             f"on {mx.default_device()}; use accelerator='cpu' or another precision")
        module.set_dtype(mx.float64, lambda dtype: mx.issubdtype(dtype, mx.floating))

    @contextmanager
    def autocast(self, module: Any) -> Iterator[None]:
        """Within: ``module``'s float32 arrays (trainable or not) in the compute dtype; after: the originals back."""
        if self.compute_dtype is None:
            yield
            return
        dtype = self.compute_dtype
        originals = tree_flatten(module.parameters())
        module.update(tree_unflatten([(k, v.astype(dtype) if v.dtype == mx.float32 else v) for k, v in originals]))
        try:
            yield
        finally:
            module.update(tree_unflatten(originals))

    def to_float32(self, tree: Any) -> Any:
        """Low-precision arrays of ``tree`` (a loss, logged values) as float32, for the loop and the loggers."""
        if self.compute_dtype is None:
            return tree
        return tree_map(lambda a: a.astype(mx.float32) if isinstance(a, mx.array) and a.dtype in _LOW else a, tree)
