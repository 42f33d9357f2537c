"""Mirror of lightning.fabric.utilities.apply_func: ``move_data_to_device``, what the default
``transfer_batch_to_device`` does with a batch."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np


def move_data_to_device(batch: Any, device: Any = None) -> Any:
    """``batch`` with every numpy array and torch tensor an ``mx.array`` (lists, tuples and dicts kept): MLX's
    memory is unified, so ``device`` is only accepted. A torch tensor is recognised without importing torch (a
    batch from a torch ``DataLoader`` means torch is loaded already) and copied through numpy."""
    if isinstance(batch, np.ndarray):
        return mx.array(batch)
    if type(batch).__module__ == "torch" and hasattr(batch, "numpy"):
        return mx.array(batch.detach().cpu().numpy())
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_data_to_device(b) for b in batch)
    if isinstance(batch, dict):
        return {k: move_data_to_device(v) for k, v in batch.items()}
    return batch
