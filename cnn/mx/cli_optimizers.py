"""``--optimizer`` and ``--lr_scheduler`` on MLX: what LightningCLI does with them on torch.

``cnn.config_translation`` has already named both for MLX (``cnn.optimizers``): an ``mlx.optimizers``
class (or a subclass, e.g. ``cnn.mx.module.AdamL2``) and an ``mlx.optimizers`` schedule function.
"""

from __future__ import annotations

import importlib
import inspect
from functools import partial
from types import MethodType
from typing import Any, Optional

import mlx.optimizers as optim

from cnn.config_translation import check_class
from cnn.errors import ConfigError


def add_optimizer_arguments(parser) -> None:
    """The ``optimizer`` and ``lr_scheduler`` keys, where LightningCLI has them: each a
    ``{class_path, init_args}`` mapping, folded and named for MLX before parsing."""
    for key, what in (("optimizer", "an mlx.optimizers class, or torch.optim's (its MLX twin)"),
                      ("lr_scheduler", "an mlx.optimizers schedule counting epochs, or "
                                       "torch.optim.lr_scheduler's (its MLX twin)")):
        parser.add_argument_group(key, name=key).add_argument(
            f"--{key}", type=Optional[dict], default=None,
            help=f"{what}: a class path or name, --{key}.ARG VALUE, or a {{class_path, init_args}} mapping")


def build_optimizer(spec: dict) -> optim.Optimizer:
    """The optimizer ``spec`` (``{class_path, init_args}``, MLX names) describes; one line if none."""
    path = spec["class_path"]
    check_class(path, "optimizer", optim.Optimizer)
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    try:
        return cls(**(spec.get("init_args") or {}))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"optimizer: {path}: {error}") from None


def build_schedule(spec: dict, learning_rate: float):
    """The schedule function ``n -> lr`` of ``spec``, its ``init`` the optimizer's rate unless given."""
    path = spec["class_path"]
    module, _, name = path.rpartition(".")
    schedule = getattr(optim, name, None) if module == optim.__name__ else None
    if schedule is None or not callable(schedule) or inspect.isclass(schedule) \
            or "init" not in inspect.signature(schedule).parameters:
        raise ConfigError(f"lr_scheduler: {path} is not an mlx.optimizers schedule (step_decay, exponential_decay, "
                          "cosine_decay, linear_schedule) nor a torch scheduler with one as its twin")
    try:
        return schedule(**{"init": learning_rate, **(spec.get("init_args") or {})})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"lr_scheduler: {path}: {error}") from None


def _configure_optimizers(module: Any, optimizer: dict, lr_scheduler: dict | None) -> Any:
    built = build_optimizer(optimizer)
    if not lr_scheduler:
        return built
    schedule = build_schedule(lr_scheduler, float(built.learning_rate))
    # Lightning's default for a scheduler LightningCLI builds: stepped after each epoch
    return {"optimizer": built, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}


def replace_configure_optimizers(model: Any, optimizer: dict | None, lr_scheduler: dict | None) -> None:
    """With an ``optimizer``, make ``model.configure_optimizers`` build it (and ``lr_scheduler``),
    as LightningCLI overrides it on torch; both are built once now, so a bad one is one line
    before anything runs. Without one, the model's own stays."""
    if not optimizer:
        return
    _configure_optimizers(model, optimizer, lr_scheduler)
    model.configure_optimizers = MethodType(partial(_configure_optimizers, optimizer=optimizer,
                                                    lr_scheduler=lr_scheduler), model)
