"""Mirror of lightning.pytorch.utilities.model_summary: what a summary counts as a module's parameters.

MLX has no buffers: the arrays torch keeps as buffers (a batch norm's running statistics, what ``register_buffer``
holds) are frozen arrays of the module, listed by ``parameters()``. Lightning's summary counts ``parameters()`` of
torch, which leaves buffers out; these functions leave out their MLX counterparts, so both sides print the same
Trainable / Non-trainable / Total counts.
"""

from __future__ import annotations

import mlx.nn as nn
from mlx.utils import tree_flatten


def buffer_keys(module: nn.Module) -> frozenset[str]:
    """The dotted names (as ``tree_flatten(module.parameters())`` gives them) of the arrays torch would keep as
    buffers: the running statistics of every ``nn.BatchNorm`` that tracks them, and every array a
    ``LightningModule`` registered with ``register_buffer``, at any depth of ``module``."""
    keys = set()
    for path, child in module.named_modules():
        prefix = f"{path}." if path else ""
        if isinstance(child, nn.BatchNorm) and child.track_running_stats:
            keys |= {f"{prefix}running_mean", f"{prefix}running_var"}
        keys |= {f"{prefix}{name}" for name in getattr(child, "buffer_names", ())}
    return frozenset(keys)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Numbers in ``module``'s parameters (only the trainable ones with ``trainable_only``), buffers left out."""
    buffers = buffer_keys(module)
    arrays = module.trainable_parameters() if trainable_only else module.parameters()
    return sum(v.size for k, v in tree_flatten(arrays) if k not in buffers)
