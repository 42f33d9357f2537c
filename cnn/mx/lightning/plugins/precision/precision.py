"""Mirror of lightning.pytorch.plugins.precision.precision: Lightning's ``precision`` flag for MLX, which has
no autocast: which dtype the steps compute in.

``"32-true"``: everything float32. ``"bf16-mixed"`` / ``"16-mixed"``: the weights and the optimizer state stay
float32 (the master copy); for each step the module's floating arrays are cast to bfloat16 / float16, the step
runs (forward, and backward through the casts, so the gradients arrive in float32), and the float32 arrays are put
back. ``"16-mixed"`` also scales the loss as torch's ``GradScaler`` does, since float16 gradients underflow.
``"64-true"``: the module is cast to float64 once, where MLX's device computes in float64 (the CPU).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional, Union

from cnn.mx.lightning.plugins.precision.amp import LossScaler

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
