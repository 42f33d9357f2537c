"""Mirror of lightning.pytorch.loops.utilities: the helpers the loops share."""

from __future__ import annotations

from typing import Any, Optional

from cnn.mx.lightning.trainer.call import call_batch_hook, call_strategy_hook


def is_limit_reached(current: int, maximum: Optional[int]) -> bool:
    """Lightning's ``_is_max_limit_reached``: ``maximum`` (``None`` or -1: none) is reached."""
    return maximum is not None and maximum != -1 and current >= maximum


def transfer_batch(trainer: Any, batch: Any, dataloader_idx: int = 0) -> Any:
    """Lightning's way from a loader's batch to the step's: ``on_before_batch_transfer``, then the strategy's
    ``batch_to_device`` (``transfer_batch_to_device``: numpy arrays and torch tensors made ``mx.array``, then
    ``on_after_batch_transfer``), each hook the datamodule's where it overrides it, else the module's."""
    batch = call_batch_hook(trainer, "on_before_batch_transfer", batch, dataloader_idx)
    return call_strategy_hook(trainer, "batch_to_device", batch, dataloader_idx=dataloader_idx)
