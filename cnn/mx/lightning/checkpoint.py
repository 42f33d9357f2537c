"""Single-file MLX checkpoints (``SafetensorsCheckpointIO``) and Lightning's checkpoint connector.

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
representations. The second half of this module is Lightning's ``_CheckpointConnector`` for the MLX trainer:
building that dict from a trainer and restoring a trainer from it (same hook order as Lightning).
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from typing import Any, Optional

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

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


# ---------------------------------------------------------------------------------------- trainer <-> checkpoint dict
def set_rng(key: mx.array) -> None:
    """Make ``key`` the global MLX PRNG key. MLX has no setter, but ``seed(s)`` sets the key to
    ``[s >> 32, s & 0xffffffff]``, so every key is reachable through ``seed``."""
    hi, lo = (int(v) for v in np.array(key, dtype=np.uint32).tolist())
    mx.random.seed((hi << 32) | lo)


def resolve_ckpt_path(trainer: Any, fn: str, ckpt_path: Optional[str]) -> Optional[str]:
    """Lightning's ``_parse_ckpt_path``: ``"best"`` -> first checkpoint callback's best model, ``"last"`` -> newest
    ``last*.safetensors`` of the checkpoint callbacks (a warning and no checkpoint when there is none)."""
    if ckpt_path is None:
        return None
    if ckpt_path == "best":
        cb = trainer.checkpoint_callback
        if cb is None or not cb.best_model_path:
            raise ValueError(f'`.{fn}(ckpt_path="best")` is set but `ModelCheckpoint` has no best model')
        return cb.best_model_path
    if ckpt_path == "last":
        candidates = set().union(*(cb._find_last_checkpoints() for cb in trainer.checkpoint_callbacks))
        if not candidates:
            warnings.warn(f'.{fn}(ckpt_path="last") is set, but there is no last checkpoint available. '
                          "No checkpoint will be loaded.", stacklevel=2)
            return None
        return max(candidates, key=os.path.getmtime)
    return os.fspath(ckpt_path)


def _storable(flat: list[tuple[str, Any]]) -> dict[str, Any]:
    """``flat`` as a dict, float64 arrays as float32: safetensors files from MLX hold no float64 (a
    ``precision="64-true"`` run resumes from float32 values, cast back to float64 by the trainer)."""
    return {k: v.astype(mx.float32) if isinstance(v, mx.array) and v.dtype == mx.float64 else v for k, v in flat}


def dump_checkpoint(trainer: Any, weights_only: bool = False) -> dict[str, Any]:
    """Lightning's ``dump_checkpoint``: every callback's ``state_dict``, then ``on_save_checkpoint`` (callbacks,
    module). ``loops.fit_loop`` holds the resume point computed by ``trainer._loop_state()``."""
    model, dm = trainer.lightning_module, trainer.datamodule
    ckpt: dict[str, Any] = {"epoch": trainer.current_epoch, "global_step": trainer.global_step,
                            "state_dict": _storable(tree_flatten(model.parameters())),
                            "loops": {"fit_loop": trainer._loop_state()}}
    if not weights_only:
        states = {cb.state_key: cb.state_dict() for cb in trainer.callbacks}
        ckpt["callbacks"] = {k: v for k, v in states.items() if v}
        if trainer.optimizers:
            ckpt["optimizer_state"] = _storable(tree_flatten(trainer.optimizers[0].state))
        ckpt["lr_schedulers"] = [{"last_epoch": c.last_epoch} for c in trainer.lr_scheduler_configs]
        ckpt["rng_state"] = mx.random.state[0]
        scaler = trainer.precision_plugin.scaler
        if scaler is not None:  # Lightning's key: its precision plugin's class name
            ckpt["MixedPrecision"] = scaler.state_dict()
    if model.hparams:
        ckpt["hyper_parameters"] = dict(model.hparams)
    if dm is not None and hasattr(dm, "state_dict"):
        dm_state = dm.state_dict()
        if dm_state:
            ckpt[type(dm).__qualname__] = dm_state
    if not weights_only:
        trainer._call_callbacks("on_save_checkpoint", ckpt)
    trainer._call_module("on_save_checkpoint", ckpt)
    return ckpt


def restore_modules_and_callbacks(trainer: Any, ckpt: dict[str, Any]) -> None:
    """Module ``on_load_checkpoint`` + weights, datamodule ``load_state_dict``, callbacks ``on_load_checkpoint`` +
    ``load_state_dict`` (Lightning's order, before ``configure_optimizers``)."""
    model, dm = trainer.lightning_module, trainer.datamodule
    trainer._call_module("on_load_checkpoint", ckpt)
    try:
        model.load_weights(list(ckpt["state_dict"].items()), strict=True)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {trainer.ckpt_path} does not match the model: "
                              f"{str(e).strip().splitlines()[0]}") from None
    mx.eval(model.parameters())
    if dm is not None and type(dm).__qualname__ in ckpt and hasattr(dm, "load_state_dict"):
        dm.load_state_dict(ckpt[type(dm).__qualname__])
    states = ckpt.get("callbacks")
    if states is not None:
        trainer._call_callbacks("on_load_checkpoint", ckpt)
        for cb in trainer.callbacks:
            if cb.state_key in states:
                cb.load_state_dict(dict(states[cb.state_key]))


def restore_training_state(trainer: Any, ckpt: dict[str, Any]) -> None:
    """Loop position, optimizer state, scheduler counters and RNG key (fit only, after ``on_fit_start``)."""
    loop = ckpt["loops"]["fit_loop"]  # FitProgress fields, as _loop_state wrote them
    trainer.fit_progress.load_state_dict({k: v for k, v in loop.items() if k != "train_results"})
    trainer._logger_connector.results["train"].load_state_dict(loop["train_results"])
    if not ckpt.get("optimizer_state"):
        raise CheckpointError(f"{trainer.ckpt_path} holds only model weights (save_weights_only); cannot resume")
    opt = trainer.optimizers[0]
    opt.state = tree_unflatten(list(ckpt["optimizer_state"].items()))
    opt.init(trainer.lightning_module.trainable_parameters())
    for config, state in zip(trainer.lr_scheduler_configs, ckpt.get("lr_schedulers", [])):
        config.last_epoch = state["last_epoch"]
    if ckpt.get("rng_state") is not None:
        set_rng(ckpt["rng_state"])
    scaler = trainer.precision_plugin.scaler
    if scaler is not None and ckpt.get("MixedPrecision"):
        scaler.load_state_dict(ckpt["MixedPrecision"])
