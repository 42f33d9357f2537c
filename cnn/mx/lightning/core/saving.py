"""Mirror of lightning.pytorch.core.saving: hyper-parameters as YAML and in checkpoints, and
``LightningModule.load_from_checkpoint``'s module built back from a checkpoint."""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Any, Mapping, Optional

from cnn.mx.lightning.plugins.io.safetensors_io import SafetensorsCheckpointIO, is_storable

import mlx.core as mx
import yaml
from mlx.utils import tree_flatten

from cnn.errors import CheckpointError


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


def load_from_checkpoint(cls: type, checkpoint_path: str, hparams_file: Optional[str] = None,
                         strict: Optional[bool] = None, checkpoint_io: Any = None, **kwargs: Any) -> Any:
    """Lightning's ``_load_from_checkpoint`` for a LightningModule class: ``cls(**hyper_parameters)`` built from
    the checkpoint's ``hyper_parameters`` (updated from ``hparams_file``, then ``kwargs``; only ``__init__``'s
    arguments unless it takes ``**kwargs``), its ``on_load_checkpoint(checkpoint)``, then the weights
    (``strict``, default ``True``: every parameter present and no other; ``False``: those that match by name).
    A mismatch is one ``CheckpointError`` line."""
    io = checkpoint_io if checkpoint_io is not None else SafetensorsCheckpointIO()
    checkpoint = io.load_checkpoint(checkpoint_path)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if hparams_file is not None:
        with open(hparams_file) as f:
            hparams.update(yaml.safe_load(f) or {})
    hparams.update(kwargs)
    signature = inspect.signature(cls.__init__)
    if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        hparams = {k: v for k, v in hparams.items() if k in signature.parameters}
    model = cls(**hparams)
    model.on_load_checkpoint(checkpoint)
    weights = checkpoint["state_dict"]
    if strict is False:
        own = dict(tree_flatten(model.parameters()))
        weights = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    try:
        model.load_weights(list(weights.items()), strict=strict is not False)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {checkpoint_path} does not match {cls.__name__}: "
                              f"{str(e).strip().splitlines()[0]}") from None
    mx.eval(model.parameters())
    return model


def load_hparams_from_yaml(config_yaml: str, use_omegaconf: bool = True) -> dict[str, Any]:
    """Lightning's ``load_hparams_from_yaml``: the hyper-parameters of an ``hparams.yaml`` (``{}`` with a warning when
    there is no such file). ``use_omegaconf`` is accepted for the signature."""
    if not os.path.isfile(config_yaml):
        warnings.warn(f"Missing Tags: {config_yaml}.", stacklevel=2)
        return {}
    with open(config_yaml, encoding="utf-8") as fp:
        return yaml.safe_load(fp) or {}
