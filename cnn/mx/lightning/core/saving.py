"""Mirror of lightning.pytorch.core.saving: hyper-parameters as YAML."""

from __future__ import annotations

from typing import Any, Mapping

import yaml


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
