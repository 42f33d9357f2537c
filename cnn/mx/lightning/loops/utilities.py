"""Mirror of lightning.pytorch.loops.utilities: the helpers the loops share."""

from __future__ import annotations

from typing import Any, Optional

import mlx.core as mx
import numpy as np


def is_limit_reached(current: int, maximum: Optional[int]) -> bool:
    """Lightning's ``_is_max_limit_reached``: ``maximum`` (``None`` or -1: none) is reached."""
    return maximum is not None and maximum != -1 and current >= maximum


def to_mx(batch: Any) -> Any:
    """``batch`` with every numpy array an ``mx.array`` (lists, tuples and dicts kept): Lightning's
    ``batch_to_device``."""
    if isinstance(batch, np.ndarray):
        return mx.array(batch)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_mx(b) for b in batch)
    if isinstance(batch, dict):
        return {k: to_mx(v) for k, v in batch.items()}
    return batch
