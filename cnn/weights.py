"""The language of trained weights and checkpoints, shared by both sides and the tools.

What a checkpoint of either framework holds, read without the other framework:

* a Lightning ``.ckpt`` (``torch.save`` zip or legacy pickle), read with ``weights_only=True``;
* a torch-layout weights file (``python cli.py convert --to torch``): tensors ``net.*``,
  ``mean``, ``std`` and JSON metadata under ``META_KEY`` with ``format`` ``cnn.schema.CKPT_FORMAT``;
* an MLX checkpoint (``cnn.mx.checkpoint``): tensors ``MLX_PREFIX + <param>`` in MLX layout
  (optional ``MLX_OPTIMIZER_PREFIX``/``MLX_RNG_KEY`` tensors, ignored here) and JSON metadata
  under ``META_KEY`` with ``format_version`` ``MLX_FORMAT_VERSION``.

Each becomes ``Weights``: the canonical (torch) layout of ``cnn.schema`` plus what the network
was trained for. ``mismatch``/``describe``/``dataset_name`` say in one line whether and why a
checkpoint does not fit a model. Only numpy and safetensors are imported here; torch only when
a ``.ckpt`` is read, and mlx never.
"""

from __future__ import annotations

import json
import os
import reprlib
import zipfile
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from cnn import schema
from cnn.bounded_yaml import check_expansion
from cnn.data.datasets import DATASETS, FOLDER
from cnn.errors import ConfigError
from cnn.user_files import open_regular

# The MLX checkpoint file (``cnn.mx.checkpoint``) and the ``--to torch`` weights file share
# these: the safetensors metadata key holding the JSON, and the MLX file's tensor prefixes.
META_KEY = "cnn"
MLX_PREFIX = "model."                # the module's parameters
MLX_OPTIMIZER_PREFIX = "optimizer."  # tree_flatten(optimizer.state)
MLX_RNG_KEY = "rng.mlx_random_key"   # mx.random.state[0]
MLX_FORMAT_VERSION = 1               # "format_version" in the MLX file's JSON
SHAPE_KEYS = ("in_channels", "image_size", "num_classes")


def first_line(error: BaseException) -> str:
    """An exception's first non-empty line (torch and safetensors errors run to many)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def dataset_name(hparams: Mapping[str, Any]) -> str | None:
    """The dataset a model was built for: by its class names (names no official dataset has:
    ``folder``, the user's own), else by a unique image shape."""
    classes = hparams.get("classes")
    if classes:
        return next((n for n, s in DATASETS.items() if list(s.classes) == list(classes)), FOLDER)
    shape = tuple(hparams.get(k) for k in SHAPE_KEYS)
    names = [n for n, s in DATASETS.items() if (s.channels, s.image_size, s.num_classes) == shape]
    return names[0] if len(names) == 1 else None


def describe(hparams: Mapping[str, Any], named: bool = True) -> str:
    """``cifar10 (3x32x32, 10 classes)`` for a model's hyper-parameters; ``named=False``: no name."""
    c, s, n = (hparams.get(k) for k in SHAPE_KEYS)
    name = f"{dataset_name(hparams) or 'an unknown dataset'} " if named else ""
    return f"{name}({c}x{s}x{s}, {n} classes)"


def mismatch(ckpt_hparams: Mapping[str, Any], model_hparams: Mapping[str, Any],
             path: str) -> str | None:
    """One line saying why a checkpoint does not fit a model, or None when it does.

    Shapes decide; when both name their classes, those must agree too (a Fashion-MNIST model
    scored on MNIST fits every tensor and still means nothing).
    """
    shape_differs = any(ckpt_hparams.get(k) != model_hparams.get(k) for k in SHAPE_KEYS)
    ours, theirs = ckpt_hparams.get("classes"), model_hparams.get("classes")
    if not shape_differs and not (ours and theirs and list(ours) != list(theirs)):
        return None
    if not shape_differs and dataset_name(ckpt_hparams) == dataset_name(model_hparams):
        # two folders of the same shape: their class names are the difference
        return (f"checkpoint {path} was trained for the classes {_listed(ours)}; this config has "
                f"{_listed(theirs)}")
    name = dataset_name(ckpt_hparams)
    return (f"checkpoint {path} was trained for {f'{name}-shaped ' if name else ''}input "
            f"{describe(ckpt_hparams, named=False)}; this config is {describe(model_hparams)}")


def _listed(classes, first: int = 6) -> str:
    names = [str(c) for c in classes]
    return ", ".join(names[:first]) + (f" ... ({len(names)} in all)" if len(names) > first else "")


def check_fits(checkpoint: Mapping[str, Any], model_hparams: Mapping[str, Any], datamodule: Any,
               path: str | None) -> None:
    """Raise ``ConfigError`` (one line) unless ``checkpoint`` was trained for the model whose
    hyper-parameters are ``model_hparams``; either side's ``on_load_checkpoint`` calls it before
    loading any tensor. A model built without class names takes the DataModule's, so that a
    checkpoint of another dataset with the same shapes is refused too."""
    trained_for = dict(checkpoint.get("hyper_parameters") or {})
    ours = dict(model_hparams)
    if not ours.get("classes") and getattr(datamodule, "spec", None) is not None:
        ours["classes"] = datamodule.spec.classes
    if all(k in trained_for for k in SHAPE_KEYS):
        problem = mismatch(trained_for, ours, path or "(in memory)")
        if problem:
            raise ConfigError(problem)


def dtype_name(value: Any) -> str:
    """``float32`` for a numpy, torch or MLX array of that dtype (``torch.float32``, ...)."""
    return str(value.dtype).rsplit(".", 1)[-1]


def check_values(state_dict: Mapping[str, Any], path: str, model_dtype: str = "float32",
                 to_numpy: Callable[[Any], np.ndarray] = np.asarray) -> None:
    """ConfigError naming the first tensor of ``state_dict`` that is not floating point (batch
    norm's integer step count aside), or not finite: such weights would load (cast, or as they
    are) and every prediction would be meaningless or ``nan``. ``to_numpy`` reads a floating
    tensor of the caller's framework."""
    for name, value in state_dict.items():
        kind = dtype_name(value)
        if name.endswith(schema.BN_COUNTER):  # batch norm's step count: an integer by design
            continue
        if not kind.startswith(("float", "bfloat")):
            raise ConfigError(f"checkpoint {path}: {name} holds {kind} values; the model's weights "
                              f"are {model_dtype}")
        if not np.isfinite(to_numpy(value)).all():
            raise ConfigError(f"checkpoint {path}: {name} is not finite (it holds nan or inf): "
                              "refusing weights that would make every prediction meaningless")


def check_state_dict(state_dict: Mapping[str, Any], arch: schema.Architecture, layout: str,
                     path: str, model_dtype: str = "float32",
                     to_numpy: Callable[[Any], np.ndarray] = np.asarray) -> None:
    """ConfigError (one line naming the keys or the tensor) unless ``state_dict`` is exactly the
    Classifier's: the network's tensors (``net.*``, shapes in ``layout``) and ``mean``/``std``,
    each finite and floating point (``check_values``). Both sides call it before loading."""
    names = [n for n in arch.shapes() if layout == "torch" or not n.endswith(schema.BN_COUNTER)]
    expected = {f"net.{name}" for name in names} | {"mean", "std"}  # MLX counts no batches
    missing, extra = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    net = {k[len("net."):]: v for k, v in state_dict.items() if k.startswith("net.")}
    if (missing or extra) and schema.network_name(net) != schema.network_name(dict.fromkeys(names)):
        raise ConfigError(f"checkpoint {path}: weights of {schema.network_name(net)} do not fit "
                          f"{schema.network_name(dict.fromkeys(names))}: set model.net as in the run "
                          "that trained them (its config.yaml)")
    if missing or extra:
        raise ConfigError(f"checkpoint {path} does not fit this network: missing {missing}, "
                          f"unexpected {extra}")
    try:
        schema.check_weights(net, arch, layout)
    except ValueError as error:
        raise ConfigError(f"checkpoint {path}: {error}") from None
    check_values(state_dict, path, model_dtype, to_numpy)


# Model arguments that change speed or memory, never the numbers a step computes: a resumed
# run may set them anew.
RESUME_FREE_KEYS = ("conv_backward_chunk", "channels_last", "compile")


def checkpoint_header(path: str) -> dict[str, Any]:
    """What a checkpoint of either side says beside its tensors: ``hyper_parameters`` (the model
    arguments it was trained with), ``epoch`` and ``global_step`` where it has them (ConfigError
    if the file cannot be read); only a safetensors header or a ``weights_only`` load is read."""
    path = os.fspath(path)
    if sniff(path) == "torch":
        try:
            import torch  # noqa: F401 - an MLX-only install: the side's own loader says what to do
        except ImportError:
            return {}
        ckpt = read_lightning_ckpt(path)
        return {key: ckpt.get(key) for key in ("hyper_parameters", "epoch", "global_step")}
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY) or "{}")
    except Exception as error:  # noqa: BLE001 - SafetensorError, JSON errors, truncation
        raise ConfigError(f"corrupt or unreadable checkpoint {path}: {first_line(error)}") from None
    return meta if isinstance(meta, dict) else {}


def checkpoint_hyper_parameters(path: str) -> dict[str, Any]:
    """The model arguments a checkpoint of either side was trained with (``checkpoint_header``)."""
    return dict(checkpoint_header(path).get("hyper_parameters") or {})


SHORT_REPR_CHARS = 120
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a few levels and items (``reprlib``): a line for a message, whatever
    a checkpoint holds."""
    text = _SHORT.repr(value)  # bounded by the limits above; a line is shorter still
    return text if len(text) <= SHORT_REPR_CHARS else text[:SHORT_REPR_CHARS - 3] + "..."


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def check_resume(path: str, model_args: Mapping[str, Any]) -> dict[str, Any]:
    """``fit --ckpt_path``: refuse (ConfigError listing each ``model.KEY``, the checkpoint's value
    and the config's) to resume a run with model values other than those it was trained with.

    Both sides follow this one rule, so a resumed run is the run its records describe: the
    config and hparams files then agree with what ran. Speed switches (``RESUME_FREE_KEYS``)
    may change; trainer values (more epochs) may too. Returns the checkpoint's header
    (``checkpoint_header``), read once for what else the resume needs.
    """
    header = checkpoint_header(path)
    trained = dict(header.get("hyper_parameters") or {})
    changed = [f"model.{k} {short_repr(trained[k])} -> {short_repr(v)}" for k, v in model_args.items()
               if k in trained and k not in RESUME_FREE_KEYS and not str(k).startswith("_")
               and not _same(trained[k], v)]
    if changed:
        raise ConfigError(f"cannot resume from {path} with changed values ({'; '.join(changed)}): "
                          f"resume with the values it was trained with, or start a new run "
                          f"without --ckpt_path")
    return header


@dataclass
class Weights:
    """One Classifier's weights in the canonical (torch) layout, and what they were trained for.

    ``params`` maps ``cnn.schema`` names (``conv1.weight`` ..., or the ResNet's ``stem.conv.weight``
    ..., batch norm buffers included) to float32 arrays (int64 batch counters); ``mean``/``std``
    are the per-channel input statistics; ``hyper_parameters`` the Classifier's arguments.
    """

    params: dict[str, np.ndarray]
    mean: np.ndarray
    std: np.ndarray
    hyper_parameters: dict[str, Any]
    source: str                      # "torch" or "mlx": the side that trained them
    epoch: int | None = None
    global_step: int | None = None
    written_by: str = "torch"        # the side whose file format held them (an MLX checkpoint: "mlx")

    @property
    def arch(self) -> schema.Architecture | schema.ResNetArchitecture:
        """The network these weights are for: the seed CNN's or the ResNet's hyper-shape."""
        return schema.architecture_of(self.params, *(int(self.hyper_parameters[k]) for k in SHAPE_KEYS))

    def metadata(self, framework: str) -> dict[str, Any]:
        """The JSON fields stored beside the tensors of a file for ``framework``."""
        hp = self.hyper_parameters
        return {"format": schema.CKPT_FORMAT, "framework": framework, "layout": framework,
                "dataset": dataset_name(hp), **{k: hp[k] for k in SHAPE_KEYS},
                "classes": list(hp["classes"]) if hp.get("classes") else None,
                "mean": self.mean.tolist(), "std": self.std.tolist(), "hyper_parameters": hp,
                "epoch": self.epoch, "global_step": self.global_step,
                "converted_from": self.source}

    def torch_state_dict(self) -> dict[str, np.ndarray]:
        """``cnn.pt.module.Classifier.state_dict()`` as numpy arrays."""
        return {"mean": self.mean, "std": self.std,
                **{f"net.{k}": v for k, v in self.params.items()}}

    def mlx_state_dict(self) -> dict[str, np.ndarray]:
        """``tree_flatten(cnn.mx.module.Classifier.parameters())`` as numpy arrays."""
        mlx = schema.to_mlx_layout(self.params, self.arch)
        return {"mean": self.mean, "std": self.std, **{f"net.{k}": v for k, v in mlx.items()}}


def weights_from_state_dict(state_dict: Mapping[str, Any], hparams: Mapping[str, Any],
                            layout: str, path: str, **extra: Any) -> Weights:
    """Check a ``net.*``/``mean``/``std`` state dict in ``layout`` and bring it to canonical form."""
    hparams = {k: v for k, v in hparams.items() if not str(k).startswith("_")}  # e.g. _instantiator
    missing = [k for k in SHAPE_KEYS if k not in hparams]
    if missing:
        raise ConfigError(f"checkpoint {path} has no hyper_parameters {missing}: "
                          f"cannot tell which network its weights belong to")
    check_values(state_dict, path)
    arrays = {k: np.asarray(v, dtype=np.int64 if k.endswith(schema.BN_COUNTER) else np.float32)
              for k, v in state_dict.items()}
    net = {k[len("net."):]: v for k, v in arrays.items() if k.startswith("net.")}
    arch = schema.architecture_of(net, *(int(hparams[k]) for k in SHAPE_KEYS))
    try:
        schema.check_weights(net, arch, layout)
    except ValueError as error:
        raise ConfigError(f"checkpoint {path}: {error}") from None
    if "mean" not in arrays or "std" not in arrays:
        raise ConfigError(f"checkpoint {path} lacks the input statistics 'mean'/'std'")
    params = net if layout == "torch" else schema.from_mlx_layout(net, arch)
    return Weights(params, arrays["mean"], arrays["std"], dict(hparams), **extra)


HEAD_BYTES = 9  # what ``checkpoint_kind`` reads of a file


def checkpoint_kind(head: bytes) -> str | None:
    """``"safetensors"``, ``"torch"`` (zip or pickle, as torch.save writes) or None: what the
    first ``HEAD_BYTES`` of a file say it is. Both frameworks tell their files apart with it."""
    # safetensors first: its little-endian u64 header length may itself start with 0x80,
    # pickle's first byte; a pickle's 9th byte is "{" only inside a frame length of 2**40+
    if len(head) == HEAD_BYTES and head[8:9] == b"{":  # u64 header length, then the JSON header
        return "safetensors"
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "torch"
    return None


def sniff(path: str) -> str:
    """``checkpoint_kind`` of the file at ``path``; ConfigError (one line) when it is neither or
    cannot be read."""
    try:
        with open_regular(path) as f:  # a FIFO or a device would block here
            head = f.read(HEAD_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"checkpoint {path} not found") from None
    except OSError as error:
        raise ConfigError(f"cannot read checkpoint {path}: {error.strerror}") from None
    kind = checkpoint_kind(head)
    if kind is None:
        raise ConfigError(f"{path} is not a checkpoint: neither a Lightning .ckpt nor a .safetensors file")
    return kind


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


# What a checkpoint of a model holds: its weights and buffers, an optimizer's state (Adam:
# two moments), at times an averaged copy (SWA) or a second optimizer's: eight copies bound all of these; and the
# rest (loop, callback and random states, hyper-parameters, class names) fits in a few MiB.
STATE_COPIES, STATE_MARGIN = 8, 16 << 20


def checkpoint_size_bound(model_bytes: int) -> int:
    """The most bytes a checkpoint of a model whose weights and buffers take ``model_bytes`` can need."""
    return STATE_COPIES * model_bytes + STATE_MARGIN


def check_declared_sizes(path: str, model_bytes: int | None = None, zip_archive: bool = True) -> None:
    """ConfigError unless the checkpoint at ``path`` declares no more bytes than it holds and, given
    ``model_bytes`` (what the weights and buffers of the model it is loaded into take), no more than
    ``checkpoint_size_bound(model_bytes)``: checked from the file's size and, for the zip archive
    ``torch.save`` writes (``zip_archive``), from its directory alone, before any tensor is read.
    ``torch.save`` stores every record uncompressed, so a declaration above the file's size is a
    compressed record, which torch would inflate in full (a "zip bomb" of a few megabytes asks for
    gigabytes). A legacy (pickle) checkpoint, or a safetensors file, declares its file's size."""
    held = os.path.getsize(path)
    declared = held
    if zip_archive and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                declared = sum(entry.file_size for entry in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise ConfigError(f"corrupt or unreadable checkpoint {path}: {first_line(error)}") from None
        if declared > held:
            raise ConfigError(f"refusing checkpoint {path}: it declares {_mib(declared)} of records but "
                              f"holds {_mib(held)} (compressed records, which torch.save never writes: "
                              "a zip bomb?)")
    if model_bytes is not None and declared > checkpoint_size_bound(model_bytes):
        raise ConfigError(f"refusing checkpoint {path}: it declares {_mib(declared)}, more than a checkpoint "
                          f"of this model can need (at most {_mib(checkpoint_size_bound(model_bytes))}: "
                          f"{STATE_COPIES} times its {_mib(model_bytes)} of weights, and "
                          f"{_mib(STATE_MARGIN)}): is it this model's?")


def read_lightning_ckpt(path: str, map_location: Any = "cpu", model_bytes: int | None = None) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: plain tensors and containers, never code.

    Raises ConfigError (one line) for a corrupt file, one that declares more bytes than it holds
    or than a checkpoint of a model of ``model_bytes`` can need (``check_declared_sizes``), one
    that needs unpickling arbitrary objects (refused, not run), or one that is not a Lightning
    checkpoint dict.
    """
    import pickle

    import torch  # only here: converting MLX -> torch must not need torch installed

    check_declared_sizes(path, model_bytes)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's first line suggests weights_only=False; the line naming the global is the news.
        why = next((ln.strip() for ln in str(error).splitlines() if "global" in ln.lower()),
                   "it holds objects other than tensors and containers")
        raise ConfigError(f"refusing checkpoint {path}: loading it would unpickle code, not just "
                          f"weights ({why})") from None
    except Exception as error:  # noqa: BLE001 - zip/pickle/EOF errors of every kind
        raise ConfigError(f"corrupt or unreadable checkpoint {path}: {first_line(error)}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ConfigError(f"{path} is not a Lightning checkpoint (no 'state_dict')")
    # pickle shares values: a few MiB of references can stand for gigabytes once anything (a
    # comparison, a repr, json.dumps) walks them
    check_expansion({k: v for k, v in ckpt.items() if k != "state_dict"}, f"refusing checkpoint {path}: it",
                    follows="its shared references", advice="is it this project's?")
    return ckpt


def read_safetensors(path: str, model_bytes: int | None = None) -> Weights:
    """A ``--to torch`` weights file or an MLX checkpoint, without importing either framework; given
    ``model_bytes``, refused when larger than a checkpoint of that model can be (``check_declared_sizes``)."""
    from safetensors import safe_open

    if model_bytes is not None:
        check_declared_sizes(path, model_bytes, zip_archive=False)
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            names = list(f.keys())
            mlx = any(n.startswith(MLX_PREFIX) for n in names)
            wanted = [n for n in names if n.startswith(MLX_PREFIX)] if mlx else names
            tensors = {n[len(MLX_PREFIX):] if mlx else n: f.get_tensor(n) for n in wanted}
        meta = json.loads(metadata[META_KEY]) if META_KEY in metadata else None
    except (json.JSONDecodeError, TypeError) as error:
        raise ConfigError(f"corrupt checkpoint metadata in {path}: {first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - SafetensorError, OSError, truncation
        raise ConfigError(f"corrupt or unreadable checkpoint {path}: {first_line(error)}") from None
    meta = meta if isinstance(meta, dict) else {}
    found = meta.get("format_version") if mlx else (meta.get("format"), meta.get("layout"))
    if found != (MLX_FORMAT_VERSION if mlx else (schema.CKPT_FORMAT, "torch")):
        raise ConfigError(f"{path} is a safetensors file but not {'an MLX' if mlx else 'a torch'} "
                          f"checkpoint of this project (format {found!r})")
    source = meta.get("converted_from") or ("mlx" if mlx else "torch")
    return weights_from_state_dict(tensors, meta.get("hyper_parameters") or {},
                                   "mlx" if mlx else "torch", path, source=source,
                                   written_by="mlx" if mlx else "torch",
                                   epoch=meta.get("epoch"), global_step=meta.get("global_step"))


def read_weights(path: str, model_bytes: int | None = None) -> Weights:
    """Any supported checkpoint (see the module docstring) as canonical ``Weights``; ``model_bytes``: what the
    weights of the model it is for take, which bounds the file (``check_declared_sizes``)."""
    path = os.fspath(path)
    if sniff(path) == "safetensors":
        return read_safetensors(path, model_bytes)
    ckpt = read_lightning_ckpt(path, model_bytes=model_bytes)
    return weights_from_state_dict(ckpt["state_dict"], ckpt.get("hyper_parameters") or {},
                                   "torch", path, source="torch", epoch=ckpt.get("epoch"),
                                   global_step=ckpt.get("global_step"))


def initial_weights(path: str, own: Mapping[str, tuple[int, ...]], num_classes: int,
                    layout: str) -> tuple[dict[str, np.ndarray], str | None]:
    """``model.init_from``: the network tensors of the checkpoint at ``path`` (either side's, or a
    converted file) to start a new run from, in ``layout`` and keyed as ``own`` (the network's
    tensor names and shapes on the side that runs), and the ``note:`` text when some are left as
    initialised. A checkpoint trained for another class count leaves the last layer's tensors
    (shaped by the class count) as they are; any other difference (another input shape, another
    network) is a ``ConfigError``. The data statistics are not taken: the new run computes its
    own."""
    # float32 (4 bytes) or narrower: the network's tensors bound the file
    weights = read_weights(path, model_bytes=4 * sum(int(np.prod(shape)) for shape in own.values()))
    state = weights.torch_state_dict() if layout == "torch" else weights.mlx_state_dict()
    theirs = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    if set(theirs) != set(own):
        raise ConfigError(f"model.init_from {path} holds the weights of another network: set "
                          "model.net as in the run that trained them")
    trained_for = int(weights.hyper_parameters["num_classes"])
    differ = [k for k in own if tuple(theirs[k].shape) != tuple(own[k])]
    head = [k for k in differ if trained_for != num_classes and theirs[k].shape[:1] == (trained_for,)
            and tuple(own[k])[:1] == (num_classes,)]
    if set(differ) - set(head):
        name = sorted(set(differ) - set(head))[0]
        raise ConfigError(f"model.init_from {path} was trained for input "
                          f"{describe(weights.hyper_parameters, named=False)}, which does not fit this "
                          f"model's ({name} is {tuple(theirs[name].shape)} there, {tuple(own[name])} here): "
                          "start from a checkpoint trained on images of this shape")
    note = (f"model.init_from {path} was trained for {trained_for} classes, this model has "
            f"{num_classes}: its last layer ({', '.join(sorted(head))}) starts afresh") if head else None
    return {k: v for k, v in theirs.items() if k not in head}, note
