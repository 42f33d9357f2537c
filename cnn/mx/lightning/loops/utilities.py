"""Mirror of lightning.pytorch.loops.utilities: the helpers the loops share."""

from __future__ import annotations

import warnings
from typing import Any, Optional

import mlx.core as mx
import numpy as np


def is_limit_reached(current: int, maximum: Optional[int]) -> bool:
    """Lightning's ``_is_max_limit_reached``: ``maximum`` (``None`` or -1: none) is reached."""
    return maximum is not None and maximum != -1 and current >= maximum


def parse_loop_limits(min_steps: Optional[int], max_steps: int, min_epochs: Optional[int],
                      max_epochs: Optional[int], trainer: Any) -> tuple[int, int]:
    """Lightning's ``_parse_loop_limits`` (at the start of a fit): no ``max_epochs`` means 1000 (with a warning)
    unless ``max_steps`` or a ``Timer`` bounds the fit (then -1, unlimited); ``min_epochs`` 1 with ``min_steps``,
    else 0."""
    from cnn.mx.lightning.callbacks.timer import Timer

    if max_epochs is None:
        if max_steps == -1 and not any(isinstance(cb, Timer) for cb in trainer.callbacks):
            if trainer.is_global_zero:
                warnings.warn("`max_epochs` was not set. Setting it to 1000 epochs. To train without an epoch "
                              "limit, set `max_epochs=-1`.", UserWarning, stacklevel=2)
            max_epochs = 1000
        else:
            max_epochs = -1
    if min_epochs is None:
        min_epochs = 1 if min_steps is not None else 0
    return min_epochs, max_epochs


def set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Lightning's ``_set_sampler_epoch``: ``set_epoch(epoch)`` of the loader's sampler and its batch sampler's
    sampler (each once), or of the loader itself when it has one (the project's loaders: their order depends only
    on seed and epoch)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
        return
    samplers: dict[int, Any] = {}
    if (sampler := getattr(loader, "sampler", None)) is not None:
        samplers[id(sampler)] = sampler
    if (batch_sampler := getattr(loader, "batch_sampler", None)) is not None \
            and (sampler := getattr(batch_sampler, "sampler", None)) is not None:
        samplers[id(sampler)] = sampler
    for sampler in samplers.values():
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)


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
