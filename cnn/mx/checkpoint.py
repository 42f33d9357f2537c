"""This project's MLX checkpoints: the file format ``cnn.weights`` defines, and the fit check.

``CHECKPOINT_IO`` is the ``SafetensorsCheckpointIO`` of ``cnn.mx.lightning`` built with the
metadata key, tensor prefixes and format version of ``cnn.weights``, so the files the MLX
trainer writes are the files ``convert`` and the torch side read. ``check_checkpoint_fits`` is
the mirror of ``cnn.pt.checkpoint.check_checkpoint_fits``.
"""

from __future__ import annotations

import os
from typing import Any

from cnn.mx.lightning.plugins.io import SafetensorsCheckpointIO

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from cnn.errors import CheckpointError
from cnn.user_files import open_regular
from cnn.weights import (
    HEAD_BYTES,
    META_KEY,
    MLX_FORMAT_VERSION,
    MLX_OPTIMIZER_PREFIX,
    MLX_PREFIX,
    MLX_RNG_KEY,
    check_declared_sizes,
    check_fits,
    check_state_dict,
    checkpoint_kind,
    dtype_name,
)


class SafeCheckpointIO(SafetensorsCheckpointIO):
    """The MLX trainer's checkpoint files in this project's format (``cnn.weights``), read safely: the twin
    of ``cnn.pt.checkpoint.SafeCheckpointIO``.

    Contract: as ``SafetensorsCheckpointIO``; a torch checkpoint given to ``load_checkpoint`` is
    a ``CheckpointError`` that says how to convert it. ``model_bytes``: what the arrays of the
    model checkpoints are loaded into take (``bound_checkpoint_reads``); a file larger than a
    checkpoint of it can be is refused before any tensor is read
    (``cnn.weights.check_declared_sizes``). None: no such bound.
    """

    def __init__(self) -> None:
        super().__init__(metadata_key=META_KEY, model_prefix=MLX_PREFIX,
                         optimizer_prefix=MLX_OPTIMIZER_PREFIX, rng_key=MLX_RNG_KEY,
                         format_version=MLX_FORMAT_VERSION)
        self.model_bytes: int | None = None

    def load_checkpoint(self, path: str) -> dict[str, Any]:
        path = os.fspath(path)
        if os.path.isfile(path) and not path.endswith(".safetensors") and _written_by_torch(path):
            raise CheckpointError(f"{path} is a torch checkpoint, not an MLX one: convert it with "
                                  f"`python cli.py convert {path} --to mlx --out FILE.safetensors`")
        if self.model_bytes is not None and os.path.isfile(path):
            check_declared_sizes(path, self.model_bytes, zip_archive=False)
        return super().load_checkpoint(path)


def bound_checkpoint_reads(trainer: Any, model: Any) -> None:
    """Bound the checkpoints ``trainer`` reads by what ``model``'s arrays take (when its checkpoint IO is a
    ``SafeCheckpointIO``)."""
    if isinstance(trainer.checkpoint_io, SafeCheckpointIO):
        trainer.checkpoint_io.model_bytes = sum(v.nbytes for _, v in tree_flatten(model.parameters()))


def _written_by_torch(path: str) -> bool:
    try:
        with open_regular(path) as f:
            return checkpoint_kind(f.read(HEAD_BYTES)) == "torch"
    except OSError:
        return False


CHECKPOINT_IO = SafeCheckpointIO()


def save_checkpoint(path: str, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` (the MLX trainer's dict) to ``path`` atomically."""
    CHECKPOINT_IO.save_checkpoint(checkpoint, path)


def load_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint dict in ``path``; ``CheckpointError`` (one line) when it cannot be."""
    return CHECKPOINT_IO.load_checkpoint(path)


def check_checkpoint_fits(checkpoint: dict[str, Any], model) -> None:
    """Raise ConfigError (one line) unless ``checkpoint`` was trained for ``model``'s data.

    Meant for ``Classifier.on_load_checkpoint``, before the weights are loaded: another
    dataset's checkpoint is one line naming what it was trained for, not a shape error, and a
    missing or extra key, a tensor that is not floating point or not finite is one line naming
    it (``cnn.weights.check_state_dict``).
    """
    trainer = model.trainer
    check_fits(checkpoint, model.hparams, getattr(trainer, "datamodule", None), trainer.ckpt_path)
    arch = getattr(getattr(model, "net", None), "arch", None)  # None for a custom ``net``
    if arch is not None:
        check_state_dict(checkpoint.get("state_dict") or {}, arch, "mlx", trainer.ckpt_path,
                         dtype_name(model.mean), lambda array: np.array(array.astype(mx.float32)))
