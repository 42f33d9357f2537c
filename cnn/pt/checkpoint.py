"""Reading and writing torch-side checkpoints safely: ``SafeCheckpointIO`` and a fit check.

* Loading never unpickles code: a ``.ckpt`` goes through ``torch.load(weights_only=True)``
  whatever the caller asks, so a crafted file is refused instead of run.
* Loading also takes ``.safetensors`` weights, both the torch-layout files of
  ``python cli.py convert --to torch`` and native MLX checkpoints (brought to torch layout), as a
  Lightning-shaped dict that ``Trainer.validate/test/predict(ckpt_path=...)`` restores.
* Saving is atomic: a kill mid-write leaves the previous checkpoint whole.
* Every unreadable, corrupt or foreign file is a one-line ``cnn.errors.ConfigError``.
"""

from __future__ import annotations

import io
import os
from typing import Any, Callable, Optional

import lightning
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cnn import atomic
from cnn.errors import ConfigError
from cnn.weights import (
    Weights,
    check_fits,
    check_state_dict,
    dtype_name,
    read_lightning_ckpt,
    read_safetensors,
    sniff,
)

# The key of a checkpoint dict read from a safetensors file that says which side wrote the file.
WRITTEN_BY = "written_by"


def lightning_checkpoint(weights: Weights) -> dict[str, Any]:
    """A weights-only checkpoint dict as Lightning's loaders expect it.

    ``pytorch-lightning_version`` is required by Lightning's checkpoint migration; ``loops``,
    ``optimizer_states`` and ``lr_schedulers`` are left out because only ``fit`` restores them
    (``check_checkpoint_fits`` turns resuming ``fit`` from such a file into one clear line, which
    for an MLX checkpoint, ``WRITTEN_BY`` ``"mlx"``, says to resume it with ``--framework mlx``).
    """
    state_dict = {k: torch.from_numpy(v.copy()) for k, v in weights.torch_state_dict().items()}
    return {"state_dict": state_dict, "hyper_parameters": dict(weights.hyper_parameters),
            "pytorch-lightning_version": lightning.__version__,
            "epoch": weights.epoch or 0, "global_step": weights.global_step or 0,
            WRITTEN_BY: weights.written_by}


class SafeCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that loads only plain weights and saves atomically.

    ``load_checkpoint(path)``: a ``.ckpt`` (any name; recognised by content) -> the dict
    ``torch.load(path, weights_only=True)`` returns; a ``.safetensors`` file (``--to torch`` or
    an MLX checkpoint) -> ``lightning_checkpoint(...)``. Raises ConfigError (one line naming the
    file) for a missing, corrupt, refused or unrecognised file.
    ``save_checkpoint(checkpoint, path)``: ``torch.save`` bytes written to a temp file beside
    ``path``, fsync'ed and ``os.replace``'d over it; remote (fsspec) paths as the parent does.
    ``model_bytes``: what the weights and buffers of the model checkpoints are loaded into take
    (``bound_checkpoint_reads``); a local file larger than a checkpoint of it can be is refused
    before any tensor is read (``cnn.weights.check_declared_sizes``). None: no such bound.
    """

    model_bytes: Optional[int] = None

    def load_checkpoint(self, path, map_location: Optional[Callable] = lambda storage, loc: storage,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        # weights_only is ignored on purpose: True always, whatever Lightning or a caller passes.
        path = os.fspath(path)
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        if sniff(path) == "safetensors":
            return lightning_checkpoint(read_safetensors(path, self.model_bytes))
        checkpoint = read_lightning_ckpt(path, map_location=map_location, model_bytes=self.model_bytes)
        # Lightning's migration reads the version; a bare dict with a state_dict still loads.
        checkpoint.setdefault("pytorch-lightning_version", lightning.__version__)
        return checkpoint

    def save_checkpoint(self, checkpoint: dict[str, Any], path,
                        storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        # Serialise in memory first: a kill before os.replace leaves only a hidden temp file.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic.write_bytes(path, buffer.getvalue())


def bound_checkpoint_reads(trainer, model) -> None:
    """Bound the checkpoints ``trainer`` reads by what ``model``'s weights and buffers take (when its checkpoint IO
    is a ``SafeCheckpointIO``)."""
    io = trainer.strategy.checkpoint_io
    if isinstance(io, SafeCheckpointIO):
        io.model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())


def check_checkpoint_fits(checkpoint: dict[str, Any], model) -> None:
    """Raise ConfigError (one line) unless ``checkpoint`` fits ``model``'s network.

    Meant for ``Classifier.on_load_checkpoint``, which Lightning calls before loading the state
    dict, so a checkpoint for another dataset or architecture is reported by what it was
    trained for (``checkpoint X was trained for cifar10-shaped input (3x32x32, 10 classes);
    this config is mnist (1x28x28, 10 classes)``) instead of a tensor-size traceback, and
    resuming ``fit`` from a weights-only file is refused before Lightning's KeyError.
    """
    try:
        trainer = model.trainer
    except RuntimeError:  # Lightning's "not attached to a `Trainer`": load_from_checkpoint
        trainer = None
    path = getattr(trainer, "ckpt_path", None) or "(in memory)"
    check_fits(checkpoint, model.hparams, getattr(trainer, "datamodule", None), path)
    arch = getattr(getattr(model, "net", None), "arch", None)  # None for a custom ``net``
    if arch is not None:
        check_state_dict(checkpoint.get("state_dict") or {}, arch, "torch", path,
                         dtype_name(model.mean), lambda tensor: tensor.detach().float().cpu().numpy())
    if getattr(getattr(trainer, "state", None), "fn", None) == "fit" \
            and "optimizer_states" not in checkpoint:
        # Lightning would fail later with a KeyError; say what the file is and what it is for.
        if checkpoint.get(WRITTEN_BY) == "mlx":
            raise ConfigError(f"checkpoint {path} is an MLX checkpoint: use --framework mlx to "
                              "resume from it (torch reads it for validate, test and predict)")
        raise ConfigError(f"checkpoint {path} holds weights only (converted, or saved with "
                          f"save_weights_only): fit cannot resume from it; use it with "
                          f"validate, test or predict")
