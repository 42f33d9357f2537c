"""Mirror of lightning.fabric.plugins.io.torch_io: ``SafetensorsCheckpointIO``, one checkpoint dict as one
``.safetensors`` file (where Lightning's ``TorchCheckpointIO`` pickles).

Layout of one checkpoint file (``mx.save_safetensors``), with the names a ``SafetensorsCheckpointIO``
is built with:

* tensors ``<model_prefix><param path>``     -- every array of the module (``tree_flatten(model.parameters())``)
* tensors ``<optimizer_prefix><state path>`` -- ``tree_flatten(optimizer.state)`` (with ``step``, ``learning_rate``)
  of the one optimizer; with several, ``<optimizer_prefix><i>.<state path>`` for the i-th
* tensor  ``<rng_key>``                      -- ``mx.random.state[0]`` (uint32[2])
* header metadata ``{<metadata_key>: <json>}`` -- everything else of the checkpoint dict (epoch, global_step, loops,
  callbacks, hyper_parameters, lr_schedulers, datamodule state, ``format_version``); an array there is ``null``
* tensors ``<extras_prefix><n>``             -- the arrays of that everything else (a callback's or
  ``on_save_checkpoint``'s ``mx.array``/numpy arrays)
* header metadata ``{<metadata_key>.types: <json>}`` -- only when needed: ``[path, spec]`` pairs naming the tuples,
  int-keyed dicts and arrays of the JSON, so each comes back with its type (a reader that ignores it sees lists,
  str keys and ``null``)

The in-memory checkpoint dict has Lightning's keys (``epoch``, ``global_step``, ``state_dict``, ``loops``,
``callbacks``, ``optimizer_states``, ``lr_schedulers``, ``hyper_parameters``, ``<DataModule qualname>``) with MLX
arrays where Lightning has tensors; ``save_checkpoint`` / ``load_checkpoint`` convert between the two. The files
of the mirror before ``optimizer_states`` (its dict had one ``optimizer_state``) have the same layout: they load as
they always did, into ``optimizer_states``
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from cnn.atomic import write_bytes
from cnn.errors import CheckpointError, CheckpointNotFoundError
from cnn.user_files import check_regular

# Array dtypes a safetensors file from MLX holds as they are; others (float64) travel as raw bytes.
_NATIVE_DTYPES = {"float32", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                  "uint64", "bool"}


def _where(path: tuple) -> str:
    return "checkpoint" + "".join(f"[{p!r}]" for p in path)


class _Encoder:
    """A checkpoint's non-tensor entries as JSON plus what JSON loses: each tuple, dict with int keys and array is
    recorded in ``types`` (``[path, spec]``), each array stored as a tensor ``<prefix><n>`` of the file's body."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.types: list[list] = []
        self.arrays: dict[str, mx.array] = {}

    def tensor(self, path: tuple, value: Any) -> None:
        key = f"{self.prefix}{len(self.arrays)}"
        kind = "mx" if isinstance(value, mx.array) else "numpy"
        dtype = str(value.dtype).replace("mlx.core.", "")
        if dtype in _NATIVE_DTYPES:
            self.arrays[key] = value if kind == "mx" else mx.array(value)
        else:  # exact bytes, viewed back as the dtype on load
            self.arrays[key] = mx.array(np.ascontiguousarray(np.array(value)).reshape(-1).view(np.uint8))
        self.types.append([list(path), {"tensor": key, "kind": kind, "dtype": dtype, "shape": list(value.shape)}])

    def encode(self, value: Any, path: tuple = ()) -> Any:
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.generic):  # numpy scalars: their Python number
            return self.encode(value.item(), path)
        if isinstance(value, (mx.array, np.ndarray)):
            self.tensor(path, value)
            return None
        if isinstance(value, (list, tuple)):
            if isinstance(value, tuple):
                self.types.append([list(path), "tuple"])
            return [self.encode(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, dict) and not isinstance(value, nn.Module):  # a module: a dict of arrays, not data
            if value and all(isinstance(k, int) and not isinstance(k, bool) for k in value):
                self.types.append([list(path), "int_keys"])
            elif not all(isinstance(k, str) for k in value):
                raise CheckpointError(f"{_where(path)} has keys of types {sorted({type(k).__name__ for k in value})}"
                                      "; a checkpoint stores dicts keyed by str or by int")
            return {str(k): self.encode(v, path + (k,)) for k, v in value.items()}
        raise CheckpointError(f"{_where(path)} is a {type(value).__name__}, which a checkpoint cannot store "
                              "(it stores None, bool, int, float, str, tuples, lists, dicts, mx and numpy arrays)")


def is_storable(value: Any) -> bool:
    """A checkpoint keeps ``value`` with its type: None, bool, int, float, str, numpy scalars, ``mx.array``,
    numpy arrays, and tuples, lists and dicts (str or int keys) of those."""
    try:
        _Encoder("").encode(value)
    except CheckpointError:
        return False
    return True


def _restore_types(obj: Any, types: list, arrays: dict[str, mx.array]) -> Any:
    """Undo :class:`_Encoder`'s JSON losses, deepest paths first (a tuple's items before the tuple)."""
    for path, spec in sorted(types, key=lambda t: -len(t[0])):
        parent, leaf = None, obj
        for part in path:
            parent, leaf = leaf, leaf[part if isinstance(leaf, list) else str(part)]
        if spec == "tuple":
            new = tuple(leaf)
        elif spec == "int_keys":
            new = {int(k): v for k, v in leaf.items()}
        else:
            new = _array(spec, arrays[spec["tensor"]])
        if parent is None:
            obj = new
        else:
            parent[path[-1] if isinstance(parent, list) else str(path[-1])] = new
    return obj


def _array(spec: dict, stored: mx.array) -> Any:
    dtype = spec["dtype"]
    if stored.dtype == mx.uint8 and dtype != "uint8":  # raw bytes of a dtype safetensors from MLX lacks
        host = np.array(stored).view(np.dtype(dtype)).reshape(spec["shape"])
        return host if spec["kind"] == "numpy" else mx.array(host, dtype=getattr(mx, dtype))
    return stored if spec["kind"] == "mx" else np.array(stored)


def _decode_floats(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: _decode_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_floats(v) for v in obj]
    return obj


def _split_optimizers(flat: dict[str, mx.array]) -> list[dict[str, mx.array]]:
    """The optimizer arrays of a file, one dict an optimizer: paths all under ``<i>.`` are several optimizers' (an
    optimizer's own state always has ``step`` at its top), else the one optimizer's."""
    heads = {k.split(".", 1)[0] for k in flat}
    if not all(h.isdigit() and "." in k for h in heads for k in flat):
        return [flat]
    states: list[dict[str, mx.array]] = [{} for _ in range(max(int(h) for h in heads) + 1)]
    for k, v in flat.items():
        i, rest = k.split(".", 1)
        states[int(i)][rest] = v
    return states


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
                 format_version: int = 1, extras_prefix: str = "extra.") -> None:
        self.metadata_key, self.format_version, self.extras_prefix = metadata_key, format_version, extras_prefix
        self.model_prefix, self.optimizer_prefix, self.rng_key = model_prefix, optimizer_prefix, rng_key

    @property
    def types_key(self) -> str:
        """The metadata entry recording the tuples, int-keyed dicts and arrays of the JSON part."""
        return f"{self.metadata_key}.types"

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str) -> None:
        """Write ``checkpoint`` to ``path`` (must end in ``.safetensors``) atomically.

        ``checkpoint["state_dict"]`` is a flat ``{path: mx.array}`` dict, ``checkpoint["optimizer_states"]`` a list
        of them, one an optimizer (a single such dict under ``"optimizer_state"``, the mirror's former key, is
        taken as the one optimizer's), and ``checkpoint["rng_state"]`` an ``mx.array``. Every other entry comes
        back from :meth:`load_checkpoint` with its type: None, bool, int, float (also inf/nan), str, tuples, lists,
        dicts (str or int keys), ``mx.array`` and numpy arrays (stored as tensors ``<extras_prefix><n>`` of the
        body, not as JSON); numpy scalars come back as Python numbers. Anything else is a ``CheckpointError``
        naming its key, before any byte is written.
        Written through ``cnn.atomic.atomic_path`` (temp file beside ``path``, fsync, ``os.replace``), so a crash
        at any point leaves either the old or the new complete file, never a torn one.
        """
        path = os.fspath(path)
        if not path.endswith(".safetensors"):
            raise ValueError(f"MLX checkpoints must end in '.safetensors', got {path!r}")
        rest = dict(checkpoint)
        arrays: dict[str, mx.array] = {}
        for k, v in (rest.pop("state_dict", None) or {}).items():
            arrays[self.model_prefix + k] = v
        states = rest.pop("optimizer_states", None)
        legacy = rest.pop("optimizer_state", None)
        if states is None:
            states = [legacy] if legacy else []
        for i, state in enumerate(states):  # one optimizer: its paths as they are; several: "<i>." in front
            prefix = self.optimizer_prefix + (f"{i}." if len(states) > 1 else "")
            for k, v in (state or {}).items():
                arrays[prefix + k] = v
        rng = rest.pop("rng_state", None)
        if rng is not None:
            arrays[self.rng_key] = rng
        rest["format_version"] = self.format_version
        encoder = _Encoder(self.extras_prefix)
        metadata = {self.metadata_key: json.dumps(encoder.encode(rest), allow_nan=False)}
        if encoder.types:  # beside the JSON, which stays readable as before by anyone who ignores this entry
            metadata[self.types_key] = json.dumps(encoder.types)
        arrays.update(encoder.arrays)

        # Serialised in memory, then written by Python: a failed write (full disk, read-only folder) is then an
        # OSError naming the file and its cause, where MLX's own writer says only "[write] Unable to write".
        buffer = io.BytesIO()
        mx.save_safetensors(buffer, arrays, metadata=metadata)
        write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path: str) -> dict[str, Any]:
        """Read a checkpoint written by :func:`save_checkpoint` back into the dict form (arrays evaluated eagerly).

        Raises:
            CheckpointError: the file is missing, unreadable, truncated or lacks the metadata.
        """
        path = os.fspath(path)
        try:
            check_regular(path)  # a FIFO would block mx.load for good
        except FileNotFoundError:
            raise CheckpointNotFoundError(f"Checkpoint file not found: {path}") from None
        except OSError as error:
            raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
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
        if self.types_key in metadata:
            ckpt = _restore_types(ckpt, json.loads(metadata[self.types_key]), arrays)
        ckpt["state_dict"] = _strip_prefix(arrays, self.model_prefix)
        optimizer = _strip_prefix(arrays, self.optimizer_prefix)
        if optimizer:
            ckpt["optimizer_states"] = _split_optimizers(optimizer)
        ckpt["rng_state"] = arrays.get(self.rng_key)
        return ckpt
