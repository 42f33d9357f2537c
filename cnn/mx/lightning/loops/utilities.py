"""Mirror of lightning.pytorch.loops.utilities: the helpers the loops share."""

from __future__ import annotations

import warnings
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


class ModuleMode:
    """Lightning's ``_ModuleMode``: the train/eval mode of every sub-module, captured and put back as it was
    (without the module's own ``train()`` being called, as Lightning sets each ``training`` flag)."""

    def __init__(self) -> None:
        self.mode: dict[str, bool] = {}

    def capture(self, module: Any) -> None:
        self.mode = {name: mod.training for name, mod in module.named_modules()}

    def restore(self, module: Any) -> None:
        import mlx.nn as nn

        # parents first: MLX's train() sets a module and everything below it, which each child then corrects
        for name, mod in sorted(module.named_modules(), key=lambda item: item[0].count(".") + bool(item[0])):
            if name in self.mode:
                nn.Module.train(mod, self.mode[name])
