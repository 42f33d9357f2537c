"""Mirror of lightning.pytorch.loops.utilities: the helpers the loops share."""

from __future__ import annotations

from typing import Any, Optional

import mlx.core as mx
import numpy as np


def is_limit_reached(current: int, maximum: Optional[int]) -> bool:
    """Lightning's ``_is_max_limit_reached``: ``maximum`` (``None`` or -1: none) is reached."""
    return maximum is not None and maximum != -1 and current >= maximum


def to_mx(batch: Any) -> Any:
    """``batch`` with every numpy array and torch tensor an ``mx.array`` (lists, tuples and dicts kept): Lightning's
    ``batch_to_device``. A torch tensor is recognised without importing torch (a batch from a torch ``DataLoader``
    means torch is loaded already) and copied through numpy."""
    if isinstance(batch, np.ndarray):
        return mx.array(batch)
    if type(batch).__module__ == "torch" and hasattr(batch, "numpy"):
        return mx.array(batch.detach().cpu().numpy())
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_mx(b) for b in batch)
    if isinstance(batch, dict):
        return {k: to_mx(v) for k, v in batch.items()}
    return batch
