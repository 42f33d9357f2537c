"""Mirror of lightning.pytorch.loggers.utilities.

What Lightning's experiment-tracker loggers share (``lightning.pytorch.loggers.utilities`` and
``lightning.fabric.utilities.logger``): hyper-parameters as flat, plain values, metric-name
prefixes, the checkpoints a logger has not uploaded yet, and the one line a missing package gives.
"""

from __future__ import annotations

import importlib
import os
from argparse import Namespace
from pathlib import Path
from typing import Any, Callable, Mapping, MutableMapping, Optional, Union

from cnn.errors import ConfigError


def import_tracker(module: str, logger: str, pip_name: str, extra: str) -> Any:
    """``module`` imported, or a ``ConfigError`` naming what to install (the CLI checks before
    anything is built, ``cnn.config_translation.check_optional_packages``; this is the same line for a
    logger built in Python)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise ConfigError(f"{logger} needs the {package} package, which is not installed: "
                          f"pip install {pip_name} (or the project's [{extra}] extra)") from None


def convert_params(params: Union[Mapping[str, Any], Namespace, None]) -> dict[str, Any]:
    """``params`` as a plain dict (Lightning's ``_convert_params``)."""
    if params is None:
        return {}
    return dict(vars(params) if isinstance(params, Namespace) else params)


def flatten_dict(params: Mapping[str, Any], delimiter: str = "/", parent_key: str = "") -> dict[str, Any]:
    """Nested dicts (and Namespaces) as one level, keys joined by ``delimiter`` (Lightning's ``_flatten_dict``)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{parent_key}{delimiter}{key}" if parent_key else str(key)
        value = vars(value) if isinstance(value, Namespace) else value
        if isinstance(value, Mapping):
            out.update(flatten_dict(value, delimiter, name))
        else:
            out[name] = value
    return out


def add_prefix(metrics: Mapping[str, Any], prefix: str, separator: str) -> dict[str, Any]:
    """``<prefix><separator><name>`` for every metric when ``prefix`` is set (Lightning's ``_add_prefix``)."""
    if not prefix:
        return dict(metrics)
    return {f"{prefix}{separator}{k}": v for k, v in metrics.items()}


def plain_number(value: Any) -> Any:
    """A python number for an mx/numpy scalar; anything else as it is."""
    return value.item() if hasattr(value, "item") else value


def scan_checkpoints(checkpoint_callback: Any, logged_model_time: Mapping[str, float]
                     ) -> list[tuple[float, str, Optional[float], str]]:
    """``(mtime, path, score, tag)`` of the checkpoints written since they were last logged,
    oldest first (Lightning's ``_scan_checkpoints``): the last, the best and the best k."""
    checkpoints: dict[str, tuple[Any, str]] = {}
    if getattr(checkpoint_callback, "last_model_path", ""):
        checkpoints[checkpoint_callback.last_model_path] = (getattr(checkpoint_callback, "current_score", None),
                                                            "latest")
    if getattr(checkpoint_callback, "best_model_path", ""):
        checkpoints[checkpoint_callback.best_model_path] = (checkpoint_callback.best_model_score, "best")
    for path, score in getattr(checkpoint_callback, "best_k_models", {}).items():
        checkpoints[path] = (score, "best_k")
    found = sorted((Path(p).stat().st_mtime, p, plain_number(s), tag) for p, (s, tag) in checkpoints.items()
                   if Path(p).is_file())
    return [c for c in found if c[1] not in logged_model_time or logged_model_time[c[1]] < c[0]]


def uploads_each_checkpoint(log_model: Union[bool, str], checkpoint_callback: Any) -> bool:
    """Whether a logger uploads every checkpoint as it is written (``log_model="all"``, or ``True`` with
    ``save_top_k=-1``), as Lightning's ``after_save_checkpoint`` decides; ``log_model=True`` otherwise uploads
    once, when the logger is finalized."""
    return log_model == "all" or (log_model is True and checkpoint_callback.save_top_k == -1)


def log_new_checkpoints(checkpoint_callback: Any, logged_model_time: MutableMapping[str, float],
                        upload: Callable[[str, Optional[float], list[str]], None]) -> None:
    """The loop of Lightning's ``_scan_and_log_checkpoints``: ``upload(path, score, aliases)`` for each
    checkpoint written since it was last logged (:func:`scan_checkpoints`), oldest first, ``aliases``
    ``["latest", "best"]`` for the best one and ``["latest"]`` for the others; each then counts as logged."""
    for mtime, path, score, _tag in scan_checkpoints(checkpoint_callback, logged_model_time):
        upload(path, score, ["latest", "best"] if path == checkpoint_callback.best_model_path else ["latest"])
        logged_model_time[path] = mtime


def checkpoint_metadata(checkpoint_callback: Any, path: str, score: Optional[float], section: str,
                        keys: tuple[str, ...]) -> dict[str, Any]:
    """What Lightning's loggers upload beside a checkpoint: its score, file name and, under
    ``section``, the callback's settings."""
    return {"score": score, "original_filename": os.path.basename(path),
            section: {k: getattr(checkpoint_callback, k) for k in keys if hasattr(checkpoint_callback, k)}}
