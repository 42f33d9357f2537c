"""Mirror of lightning.pytorch.core.saving: hyper-parameters as YAML and in checkpoints, and
``LightningModule.load_from_checkpoint``'s module built back from a checkpoint."""

from __future__ import annotations

import inspect
import os
import warnings
from argparse import Namespace
from enum import Enum
from typing import Any, Mapping, NamedTuple, Optional

from cnn.mx.lightning.plugins.io.safetensors_io import SafetensorsCheckpointIO, is_storable

import mlx.core as mx
import mlx.nn as nn
import yaml
from mlx.utils import tree_flatten

from cnn.bounded_yaml import load_yaml
from cnn.errors import CheckpointMismatchError
from cnn.user_files import open_regular

LIGHTNING_API_VERSION = "2.6.6"
"""The Lightning release whose API and checkpoint layout this mirror follows; checkpoints record it under Lightning's
``pytorch-lightning_version`` key."""


def yaml_safe(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the values ``yaml`` cannot dump replaced by their type name, as Lightning's
    ``save_hparams_to_yaml`` does."""
    out = {}
    for k, v in params.items():
        try:
            yaml.safe_dump(v)
            out[k] = v
        except yaml.YAMLError:
            out[k] = type(v).__name__
    return out


def stored_name(value: Any) -> str:
    """What a checkpoint records for a value it cannot store: a function's or class's dotted name, else its
    type's (``"mlx.nn.layers.activations.relu"``, ``"mlx.nn.layers.linear.Linear"``)."""
    named = value if hasattr(value, "__qualname__") else type(value)
    return f"{getattr(named, '__module__', '') or ''}.{named.__qualname__}".lstrip(".")


def storable_hparams(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every value a checkpoint cannot store (:func:`is_storable`) replaced by
    :func:`stored_name`."""
    return {k: v if is_storable(v) else stored_name(v) for k, v in params.items()}


def save_hparams_to_yaml(config_yaml: str, hparams: Any) -> None:
    """Lightning's ``save_hparams_to_yaml``: ``hparams`` (a dict, ``Namespace`` or ``AttributeDict``) as YAML; an
    ``Enum`` as its name; a value YAML cannot write is left out with Lightning's warning."""
    if isinstance(hparams, Namespace):
        hparams = vars(hparams)
    out = {}
    for k, v in dict(hparams).items():
        v = v.name if isinstance(v, Enum) else v
        try:
            yaml.safe_dump(v)
        except (yaml.YAMLError, TypeError, ValueError):
            warnings.warn(f"Skipping {k!r} parameter because it is not possible to safely dump to YAML.",
                          stacklevel=2)
            continue
        out[k] = v
    with open(config_yaml, "w", newline="") as fp:
        yaml.safe_dump(out, fp)


def load_hparams_from_yaml(config_yaml: str, use_omegaconf: bool = True) -> dict[str, Any]:
    """Lightning's ``load_hparams_from_yaml``: the dict a YAML file holds (``{}`` with a warning when the file is
    missing). ``use_omegaconf`` is accepted; the mirror always returns a plain dict."""
    if not os.path.exists(config_yaml):
        warnings.warn(f"Missing Tags: {config_yaml}.", RuntimeWarning, stacklevel=2)
        return {}
    with open_regular(config_yaml) as fp:  # a FIFO is refused, and what it holds is bounded once expanded
        return load_yaml(fp.read().decode(), f"hparams file {config_yaml}") or {}


def load_from_checkpoint(cls: type, checkpoint_path: str, hparams_file: Optional[str] = None,
                         strict: Optional[bool] = None, checkpoint_io: Any = None, **kwargs: Any) -> Any:
    """Lightning's ``_load_from_checkpoint`` for a ``LightningModule`` or ``LightningDataModule`` class: ``cls``
    built from the checkpoint's hyper-parameters (its ``CHECKPOINT_HYPER_PARAMS_KEY``; replaced by
    ``hparams_file``, then updated from ``kwargs``; only ``__init__``'s arguments unless it takes ``**kwargs``;
    passed as one argument when ``save_hyperparameters(container)`` saved them from it); a datamodule then gets
    its ``load_state_dict``, a module its ``on_load_checkpoint(checkpoint)`` and its weights through
    ``load_state_dict(strict=...)`` (``strict`` default: the module's ``strict_loading``, else ``True``). A weight
    whose shape differs is an error even when not strict, as in Lightning."""
    io = checkpoint_io if checkpoint_io is not None else SafetensorsCheckpointIO()
    checkpoint = io.load_checkpoint(checkpoint_path)
    key = cls.CHECKPOINT_HYPER_PARAMS_KEY
    if hparams_file is not None:
        extension = str(hparams_file).split(".")[-1].lower()
        if extension not in ("yml", "yaml"):
            raise ValueError(".yml or .yaml is required for `hparams_file`")
        checkpoint[key] = load_hparams_from_yaml(hparams_file)
    checkpoint.setdefault(key, {})
    checkpoint[key] = dict(checkpoint[key] or {})
    checkpoint[key].update(kwargs)

    obj = _load_state(cls, checkpoint, **kwargs)
    if not isinstance(obj, nn.Module):  # a LightningDataModule: no weights
        if type(obj).__qualname__ in checkpoint:
            obj.load_state_dict(checkpoint[type(obj).__qualname__])
        return obj
    strict = obj.loading_strictness(strict)
    obj.on_load_checkpoint(checkpoint)
    state_dict = checkpoint["state_dict"]
    if not state_dict:
        warnings.warn(f"The state dict in {os.fspath(checkpoint_path)!r} contains no parameters.", stacklevel=2)
        return obj
    try:
        keys = obj.load_state_dict(state_dict, strict=strict)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f"checkpoint {checkpoint_path} does not match {cls.__name__}: {e}") from None
    if not strict and keys is not None:
        if keys.missing_keys:
            warnings.warn(f"Found keys that are in the model state dict but not in the checkpoint: "
                          f"{keys.missing_keys}", stacklevel=2)
        if keys.unexpected_keys:
            warnings.warn(f"Found keys that are not in the model state dict but in the checkpoint: "
                          f"{keys.unexpected_keys}", stacklevel=2)
    return obj


def _load_state(cls: type, checkpoint: dict[str, Any], **cls_kwargs_new: Any) -> Any:
    """Lightning's ``_load_state``: ``cls`` built from the checkpoint's hyper-parameters and ``cls_kwargs_new``."""
    from cnn.mx.lightning.utilities.parsing import AttributeDict, parse_class_init_keys

    self_var, args_var, kwargs_var = parse_class_init_keys(cls)
    drop = [n for n in (self_var, args_var, kwargs_var) if n]
    init_names = [n for n in inspect.signature(cls.__init__).parameters if n not in drop]
    loaded: Any = {}
    if cls.CHECKPOINT_HYPER_PARAMS_KEY in checkpoint:
        if cls.CHECKPOINT_HYPER_PARAMS_KEY == "hyper_parameters":  # a module: the keys of Lightning before 0.7.6
            for old_key in CHECKPOINT_PAST_HPARAMS_KEYS:
                loaded.update(checkpoint.get(old_key, {}))
        loaded.update(checkpoint.get(cls.CHECKPOINT_HYPER_PARAMS_KEY, {}))
        if checkpoint.get(cls.CHECKPOINT_HYPER_PARAMS_TYPE):
            loaded = AttributeDict(loaded)
        args_name = checkpoint.get(cls.CHECKPOINT_HYPER_PARAMS_NAME)
        if args_name and args_name in init_names:
            loaded = {args_name: loaded}
    kwargs = {**loaded, **cls_kwargs_new}
    if not inspect.getfullargspec(cls.__init__).varkw:
        kwargs = {k: v for k, v in kwargs.items() if k in init_names}
    return cls(**kwargs)


CHECKPOINT_PAST_HPARAMS_KEYS = ("hparams", "module_arguments")  # Lightning 0.7.6's names


def load_state_dict(module: Any, state_dict: Mapping[str, Any], strict: bool = True) -> Any:
    """torch's ``Module.load_state_dict`` for an MLX module: see ``LightningModule.load_state_dict``."""
    own = dict(tree_flatten(module.parameters()))
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    errors = []  # torch's messages, in torch's order, on one line
    if strict and unexpected:
        errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
    if strict and missing:
        errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
    errors += [f"size mismatch for {k}: copying a param with shape {tuple(v.shape)} from checkpoint, the shape in "
               f"current model is {tuple(own[k].shape)}." for k, v in state_dict.items()
               if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if errors:
        raise CheckpointMismatchError(f"Error(s) in loading state_dict for {type(module).__name__}: "
                                      + " ".join(errors))
    module.load_weights([(k, v) for k, v in state_dict.items() if k in own], strict=False)
    mx.eval(module.parameters())
    return IncompatibleKeys(missing, unexpected)


class IncompatibleKeys(NamedTuple):
    """torch's ``_IncompatibleKeys``: what ``load_state_dict`` did not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]
