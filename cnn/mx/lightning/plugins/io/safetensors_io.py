"""Mirror of lightning.fabric.plugins.io.torch_io: ``SafetensorsCheckpointIO``, one checkpoint dict as one
``.safetensors`` file (where Lightning's ``TorchCheckpointIO`` pickles).

Layout of one checkpoint file (``mx.save_safetensors``), with the names a ``SafetensorsCheckpointIO``
is built with:

* tensors ``<model_prefix><param path>``     -- every array of the module (``tree_flatten(model.parameters())``)
* tensors ``<optimizer_prefix><state path>`` -- ``tree_flatten(optimizer.state)`` (with ``step``, ``learning_rate``)
* tensor  ``<rng_key>``                      -- ``mx.random.state[0]`` (uint32[2])
* header metadata ``{<metadata_key>: <json>}`` -- everything else of the checkpoint dict (epoch, global_step, loops,
  callbacks, hyper_parameters, lr_schedulers, datamodule state, ``format_version``)

The in-memory checkpoint dict mirrors Lightning's (``epoch``, ``global_step``, ``state_dict``, ``loops``,
``callbacks``, ``optimizer_state``, ``lr_schedulers``, ``hyper_parameters``, ``<DataModule qualname>``) with MLX
arrays where Lightning has tensors; ``save_checkpoint`` / ``load_checkpoint`` convert between the two
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any

import mlx.core as mx

from cnn.atomic import write_bytes
from cnn.errors import CheckpointError


def _json_default(obj: Any) -> Any:
    # Callback states may hold mx scalars (e.g. best scores) or numpy numbers: store them as plain numbers.
    if isinstance(obj, mx.array):
        return obj.item() if obj.size == 1 else obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def _encode_floats(obj: Any) -> Any:
    # JSON has no inf/nan: Lightning's ModelCheckpoint/EarlyStopping keep +-inf as "not yet set" sentinels.
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if isinstance(obj, dict):
        return {str(k): _encode_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode_floats(v) for v in obj]
    return obj


def _decode_floats(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: _decode_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_floats(v) for v in obj]
    return obj


def _strip_prefix(arrays: dict[str, mx.array], prefix: str) -> dict[str, mx.array]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


class SafetensorsCheckpointIO:
    """Writes and reads one checkpoint dict as one ``.safetensors`` file (Lightning's ``CheckpointIO``).

    Contract: ``save_checkpoint(checkpoint, path)`` writes atomically (temp file beside ``path``, fsync,
    ``os.replace``); ``load_checkpoint(path)`` returns the dict saved, arrays evaluated, or raises
    ``cnn.errors.CheckpointError`` with one line for a missing, unreadable, truncated or foreign file. The tensor
    prefixes, the metadata key and the format version name the file format; an application that reads the files
    elsewhere passes its own (the defaults serve a trainer used on its own).
    """

    def __init__(self, metadata_key: str = "lightning", model_prefix: str = "model.",
                 optimizer_prefix: str = "optimizer.", rng_key: str = "rng.mlx_random_key",
                 format_version: int = 1) -> None:
        self.metadata_key, self.format_version = metadata_key, format_version
        self.model_prefix, self.optimizer_prefix, self.rng_key = model_prefix, optimizer_prefix, rng_key

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str) -> None:
        """Write ``checkpoint`` to ``path`` (must end in ``.safetensors``) atomically.

        ``checkpoint["state_dict"]`` and ``checkpoint["optimizer_state"]`` are flat ``{path: mx.array}`` dicts and
        ``checkpoint["rng_state"]`` an ``mx.array``; all other entries must be JSON-serialisable (mx scalars are
        converted). Written through ``cnn.atomic.atomic_path`` (temp file beside ``path``, fsync, ``os.replace``), so a
        crash at any point leaves either the old or the new complete file, never a torn one.
        """
        path = os.fspath(path)
        if not path.endswith(".safetensors"):
            raise ValueError(f"MLX checkpoints must end in '.safetensors', got {path!r}")
        rest = dict(checkpoint)
        arrays: dict[str, mx.array] = {}
        for k, v in (rest.pop("state_dict", None) or {}).items():
            arrays[self.model_prefix + k] = v
        for k, v in (rest.pop("optimizer_state", None) or {}).items():
            arrays[self.optimizer_prefix + k] = v
        rng = rest.pop("rng_state", None)
        if rng is not None:
            arrays[self.rng_key] = rng
        rest["format_version"] = self.format_version
        meta = json.dumps(_encode_floats(json.loads(json.dumps(rest, default=_json_default))), allow_nan=False)

        # Serialised in memory, then written by Python: a failed write (full disk, read-only folder) is then an
        # OSError naming the file and its cause, where MLX's own writer says only "[write] Unable to write".
        buffer = io.BytesIO()
        mx.save_safetensors(buffer, arrays, metadata={self.metadata_key: meta})
        write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path: str) -> dict[str, Any]:
        """Read a checkpoint written by :func:`save_checkpoint` back into the dict form (arrays evaluated eagerly).

        Raises:
            CheckpointError: the file is missing, unreadable, truncated or lacks the metadata.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint not found: {path}")
        if not path.endswith(".safetensors"):
            raise CheckpointError(f"not an MLX checkpoint (expected a .safetensors file): {path}")
        try:
            arrays, metadata = mx.load(path, return_metadata=True)
            mx.eval(list(arrays.values()))  # fail here, not later, on truncated data
        except Exception as e:  # mlx raises RuntimeError/ValueError with multi-line text
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"corrupt or unreadable checkpoint {path}: {reason}") from None
        if self.metadata_key not in (metadata or {}):
            raise CheckpointError(f"{path} is a safetensors file but not an MLX checkpoint of this kind "
                                  f"(no '{self.metadata_key}' metadata)")
        try:
            ckpt = _decode_floats(json.loads(metadata[self.metadata_key]))
        except json.JSONDecodeError as e:
            raise CheckpointError(f"corrupt checkpoint metadata in {path}: {e}") from None
        version = ckpt.get("format_version")
        if version != self.format_version:
            raise CheckpointError(f"unsupported checkpoint format_version {version!r} in {path} "
                                  f"(expected {self.format_version})")
        ckpt["state_dict"] = _strip_prefix(arrays, self.model_prefix)
        ckpt["optimizer_state"] = _strip_prefix(arrays, self.optimizer_prefix)
        ckpt["rng_state"] = arrays.get(self.rng_key)
        return ckpt
