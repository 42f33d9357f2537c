"""``--optimizer`` and ``--lr_scheduler``, LightningCLI's keys, on both frameworks.

On torch the keys take any ``torch.optim`` optimizer and ``torch.optim.lr_scheduler`` scheduler, as
LightningCLI's do; on MLX an ``mlx.optimizers`` optimizer and schedule. ``TWINS`` pairs the ones
that compute the same updates and rates, so a config names either and runs on both sides: a torch
name given to MLX becomes its twin (``lr`` -> ``learning_rate``, ``gamma`` -> ``decay_rate``,
torch's defaults carried over where MLX's differ), and an MLX name given to torch becomes its
torch twin. One without a twin, or an argument only one side has at a value the other cannot
honour, is a ``ConfigError`` naming the nearest class of the side that runs (``NEAREST``).

A scheduler steps once per epoch on both sides (Lightning's ``interval: epoch``): an MLX schedule
under ``lr_scheduler`` counts epochs, not optimizer steps; its ``init`` is the optimizer's rate
unless given. Before parsing, ``OptimizerKeys`` folds every piece of the two keys (config files,
``--optimizer X``, ``--optimizer.lr V``, JSON) in the order given, as the parser would, into one
``--optimizer`` and one ``--lr_scheduler`` option named for the side that runs
(``cnn.config_translation.translate_args``).

Framework-free: classes are named by strings; nothing here imports torch or MLX.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cnn.bounded_yaml import load_yaml
from cnn.errors import ConfigError

KEYS = ("optimizer", "lr_scheduler")
TORCH_PACKAGE = {"optimizer": "torch.optim", "lr_scheduler": "torch.optim.lr_scheduler"}
MLX_PACKAGE = "mlx.optimizers"
LIGHTNING_PLATEAU = "lightning.pytorch.cli.ReduceLROnPlateau"  # LightningCLI's, with a monitor
# torch arguments every optimizer twin leaves at this value (implementation switches, or variants
# no MLX optimizer has): another value is refused on MLX.
TORCH_SWITCHES = {"amsgrad": False, "foreach": None, "maximize": False, "capturable": False,
                  "differentiable": False, "fused": None, "decoupled_weight_decay": False}


@dataclass(frozen=True)
class Twin:
    """A torch class and the MLX class or schedule function that computes the same thing.

    ``defaults``: torch's defaults of the arguments MLX takes too (an unset one keeps torch's
    value on MLX); ``mlx_defaults``: MLX's, where they differ (an unset one keeps MLX's value on
    torch); ``renames``: torch argument -> MLX argument; ``torch_only``: torch arguments MLX lacks,
    with the one value at which both agree; ``fixed``: MLX arguments set so that it computes what
    torch does; ``scaled``: MLX argument -> the torch factor of the optimizer's rate it equals."""

    key: str
    torch: str
    mlx: str
    defaults: dict[str, Any]
    mlx_defaults: dict[str, Any] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)
    torch_only: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    scaled: dict[str, str] = field(default_factory=dict)


def _optimizer(torch: str, mlx: str, defaults: dict, **kwargs) -> Twin:
    renames = {"lr": "learning_rate", **kwargs.pop("renames", {})}
    torch_only = {**TORCH_SWITCHES, **kwargs.pop("torch_only", {})}
    return Twin("optimizer", f"torch.optim.{torch}", mlx, defaults, renames=renames,
                torch_only=torch_only, **kwargs)


def _scheduler(torch: str, mlx: str, defaults: dict, **kwargs) -> Twin:
    return Twin("lr_scheduler", f"torch.optim.lr_scheduler.{torch}", f"{MLX_PACKAGE}.{mlx}", defaults,
                torch_only={"last_epoch": -1}, **kwargs)


ADAM = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8}
# Twins, torch -> MLX in the order listed (the first twin of a torch class is the one MLX gets).
TWINS = (
    # torch's Adam: bias-corrected, weight_decay an L2 term on the gradient (MLX's Adam has neither)
    _optimizer("Adam", "cnn.mx.module.AdamL2", {**ADAM, "weight_decay": 0.0}),
    _optimizer("Adam", f"{MLX_PACKAGE}.Adam", ADAM, torch_only={"weight_decay": 0.0},
               mlx_defaults={"bias_correction": False}, fixed={"bias_correction": True}),
    _optimizer("AdamW", f"{MLX_PACKAGE}.AdamW", {**ADAM, "weight_decay": 1e-2},
               mlx_defaults={"bias_correction": False}, fixed={"bias_correction": True}),
    # dampening: torch's first step skips it and MLX's does not
    _optimizer("SGD", f"{MLX_PACKAGE}.SGD", {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0, "nesterov": False},
               torch_only={"dampening": 0.0}),
    _optimizer("RMSprop", f"{MLX_PACKAGE}.RMSprop", {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8},
               torch_only={"weight_decay": 0.0, "momentum": 0.0, "centered": False}),
    _optimizer("Adagrad", f"{MLX_PACKAGE}.Adagrad", {"lr": 1e-2, "eps": 1e-10}, mlx_defaults={"eps": 1e-8},
               torch_only={"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0}),
    _optimizer("Adadelta", f"{MLX_PACKAGE}.AdaDelta", {"lr": 1.0, "rho": 0.9, "eps": 1e-6},
               torch_only={"weight_decay": 0.0}),
    _scheduler("StepLR", "step_decay", {"step_size": None, "gamma": 0.1}, renames={"gamma": "decay_rate"}),
    _scheduler("ExponentialLR", "exponential_decay", {"gamma": None}, renames={"gamma": "decay_rate"}),
    # equal while the epoch is at most T_max; after it torch's rate rises again, MLX's stays at eta_min
    _scheduler("CosineAnnealingLR", "cosine_decay", {"T_max": None, "eta_min": 0.0},
               renames={"T_max": "decay_steps", "eta_min": "end"}),
    _scheduler("LinearLR", "linear_schedule", {"start_factor": 1.0 / 3.0, "end_factor": 1.0, "total_iters": 5},
               renames={"total_iters": "steps"},
               scaled={"init": "start_factor", "end": "end_factor"}),
)
# What each side has nothing equal to, and the nearest it has (on MLX: an mlx.optimizers name).
NEAREST = {
    "mlx": {"Adamax": "mlx.optimizers.Adamax (which does not correct the first moment's bias)",
            "NAdam": "mlx.optimizers.Adam", "RAdam": "mlx.optimizers.Adam",
            "SparseAdam": "mlx.optimizers.Adam", "Adafactor": "mlx.optimizers.Adafactor",
            "ASGD": "mlx.optimizers.SGD", "Rprop": "mlx.optimizers.SGD", "LBFGS": "mlx.optimizers.SGD",
            "Muon": "mlx.optimizers.Muon",
            "MultiStepLR": "mlx.optimizers.step_decay", "ConstantLR": "mlx.optimizers.join_schedules",
            "PolynomialLR": "mlx.optimizers.linear_schedule",
            "CosineAnnealingWarmRestarts": "mlx.optimizers.cosine_decay",
            "OneCycleLR": "--model.lr_schedule onecycle (torch's OneCycleLR, per step, on both frameworks)",
            "ReduceLROnPlateau": "mlx.optimizers.step_decay (the MLX trainer steps schedules by epoch, "
                                 "not by a metric)"},
    "torch": {"Lion": "torch.optim.AdamW", "Adamax": "torch.optim.Adamax", "Adafactor": "torch.optim.Adafactor",
              "Muon": "torch.optim.Muon", "MultiOptimizer": "one torch.optim optimizer",
              "join_schedules": "torch.optim.lr_scheduler.SequentialLR"},
}
# Bare names (``--optimizer Adam``) mean torch's class where torch has one, as in LightningCLI.
TORCH_NAMES = {"optimizer": {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam",
                             "SparseAdam", "Adafactor", "ASGD", "Rprop", "LBFGS", "Muon"},
               "lr_scheduler": {"StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "MultiStepLR",
                                "ConstantLR", "PolynomialLR", "CosineAnnealingWarmRestarts", "OneCycleLR",
                                "ReduceLROnPlateau", "CyclicLR", "LambdaLR", "MultiplicativeLR", "SequentialLR",
                                "ChainedScheduler"}}
MLX_ONLY_NAMES = {"optimizer": {"AdaDelta", "Lion", "MultiOptimizer"},
                  "lr_scheduler": {"step_decay", "exponential_decay", "cosine_decay", "linear_schedule",
                                   "join_schedules"}}
DEFAULT_NEAREST = {("mlx", "optimizer"): "mlx.optimizers.Adam",
                   ("mlx", "lr_scheduler"): "mlx.optimizers.step_decay",
                   ("torch", "optimizer"): "torch.optim.Adam",
                   ("torch", "lr_scheduler"): "torch.optim.lr_scheduler.StepLR"}


def _name(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _refuse(key: str, path: str, framework: str, why: str = "", twin: Twin | None = None) -> ConfigError:
    """The line refusing ``path`` (with the arguments ``why``) on ``framework``; ``twin``: the class
    it has an equal in at other arguments, which is then the nearest."""
    nearest = getattr(twin, framework, "") if twin else ""
    if not nearest.startswith((MLX_PACKAGE + ".", TORCH_PACKAGE["optimizer"] + ".")):
        nearest = NEAREST[framework].get(_name(path), DEFAULT_NEAREST[framework, key])
    other = "mlx" if framework == "torch" else "torch"
    return ConfigError(f"{key}: {path}{why} has no exact {framework} counterpart; the nearest is {nearest}, "
                       f"or run with --framework {other}")


def _is_torch(path: str, key: str) -> bool:
    return path.startswith(TORCH_PACKAGE[key] + ".") or path == LIGHTNING_PLATEAU


def _is_mlx(path: str) -> bool:
    return path.startswith((MLX_PACKAGE + ".", "cnn.mx."))


def _full_path(name: str, key: str, framework: str) -> str:
    """A bare class name (``Adam``, ``StepLR``) as a path: Lightning's meaning (torch's class) when
    torch has it, else MLX's; left bare when neither knows it (the parser then says so)."""
    if "." in name:
        return name
    if name in TORCH_NAMES[key]:
        return f"{TORCH_PACKAGE[key]}.{name}"
    if name in MLX_ONLY_NAMES[key]:
        return f"{MLX_PACKAGE}.{name}"
    return name


def _to_mlx(key: str, spec: dict, base_lr: float | None) -> dict:
    path, args = spec["class_path"], dict(spec.get("init_args") or {})
    if path == LIGHTNING_PLATEAU:
        path = f"{TORCH_PACKAGE[key]}.ReduceLROnPlateau"
    twin = next((t for t in TWINS if t.key == key and t.torch == path), None)
    if twin is None:
        raise _refuse(key, path, "mlx")
    unknown = sorted(set(args) - set(twin.defaults) - set(twin.torch_only))
    if unknown:
        raise ConfigError(f"{key}: {_name(path)} has no argument {unknown[0]!r}")
    for arg, same in twin.torch_only.items():
        if arg in args and args.pop(arg) != same:
            raise _refuse(key, path, "mlx", f"({arg}={spec['init_args'][arg]!r})", twin)
    values = {**twin.defaults, **args}
    out = {twin.renames.get(k, k): v for k, v in values.items() if v is not None and k not in twin.scaled.values()}
    out.update({arg: values[factor] * (base_lr if base_lr is not None else 1.0)
                for arg, factor in twin.scaled.items()})
    return {"class_path": twin.mlx, "init_args": {**out, **twin.fixed}}


def _to_torch(key: str, spec: dict, base_lr: float | None) -> dict:
    path, args = spec["class_path"], dict(spec.get("init_args") or {})
    twins = [t for t in TWINS if t.key == key and t.mlx == path]
    if not twins:
        raise _refuse(key, path, "torch")
    twin = twins[0]
    mlx_names = {twin.renames.get(k, k) for k in twin.defaults} | set(twin.fixed) | set(twin.scaled)
    unknown = sorted(set(args) - mlx_names)
    if unknown:
        raise ConfigError(f"{key}: {_name(path)} has no argument {unknown[0]!r}")
    values = {**twin.mlx_defaults, **args}
    for arg, value in twin.fixed.items():
        if values[arg] != value:
            raise _refuse(key, path, "torch", f"({arg}={values[arg]!r})", twin)
    back = {mlx: torch for torch, mlx in twin.renames.items()}
    out = {back.get(k, k): v for k, v in values.items() if k not in twin.scaled and k not in twin.fixed}
    for arg, torch_arg in twin.scaled.items():
        if arg in args:
            out[torch_arg] = args[arg] / base_lr if base_lr else args[arg]
    return {"class_path": twin.torch, "init_args": out}



def _learning_rate(spec: dict | None) -> float | None:
    """The rate ``spec`` (an optimizer, either side's names) starts at: given, or torch's default."""
    if not spec:
        return None
    args = spec.get("init_args") or {}
    for arg in ("lr", "learning_rate"):
        if isinstance(args.get(arg), (int, float)):
            return float(args[arg])
    twin = next((t for t in TWINS if spec.get("class_path") in (t.torch, t.mlx)), None)
    return twin.defaults.get("lr") if twin else None


def translate(key: str, spec: dict | None, framework: str, base_lr: float | None = None) -> dict | None:
    """``spec`` (``{class_path, init_args}`` of ``key``) as ``framework`` names it: the other side's
    class becomes its twin; ``ConfigError`` (one line) for one without an equal (``NEAREST``)."""
    if not spec:
        return spec
    path = _full_path(str(spec["class_path"]), key, framework)
    if framework == "torch" and path == f"{TORCH_PACKAGE[key]}.ReduceLROnPlateau":
        path = LIGHTNING_PLATEAU  # LightningCLI's: it knows the metric to step with
    spec = {**spec, "class_path": path}
    if framework == "mlx" and _is_torch(path, key):
        return _to_mlx(key, spec, base_lr)
    if framework == "torch" and _is_mlx(path):
        return _to_torch(key, spec, base_lr)
    return spec


def _scalar(text: str) -> Any:
    """A command-line value as the parser would type it: a number, a bool, null, JSON, or text."""
    for parse in (int, float, json.loads):
        try:
            return parse(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None, "none": None}.get(text.lower(), text)


class OptimizerKeys:
    """The ``optimizer`` and ``lr_scheduler`` of a command line, folded in the order given.

    ``take_config`` reads a config file's sections (and returns the config without them),
    ``take_arg`` one option (``--optimizer X``, ``--optimizer.lr V``, ``--optimizer.init_args.lr V``,
    ``--optimizer JSON``); ``for_framework`` gives what replaces them, named for the side that
    runs. A new class drops the arguments of the one before, as the parser does."""

    def __init__(self) -> None:
        self.specs: dict[str, dict | None] = {}

    @staticmethod
    def owns(key: str | None) -> bool:
        return key is not None and key.split(".", 1)[0] in KEYS and key.rpartition(".")[2] != "help"

    def _set_class(self, key: str, value: Any) -> None:
        if isinstance(value, dict):
            value = {"class_path": value.get("class_path"), "init_args": dict(value.get("init_args") or {})}
            if value["class_path"] is None:  # a mapping of init args for the class already named
                self._set_args(key, value["init_args"])
                return
            self.specs[key] = value
        elif value is None:
            self.specs[key] = None
        else:
            old = self.specs.get(key) or {}
            same = old.get("class_path") == value
            self.specs[key] = {"class_path": str(value), "init_args": old.get("init_args", {}) if same else {}}

    def _set_args(self, key: str, args: dict) -> None:
        spec = self.specs.get(key)
        if not spec:
            raise ConfigError(f"--{key}.{next(iter(args), '')}: name the {key} class first, e.g. "
                              f"--{key} {'Adam' if key == 'optimizer' else 'StepLR'}")
        spec["init_args"].update(args)

    def take_config(self, config: dict) -> dict:
        if not any(key in config for key in KEYS):
            return config
        for key in KEYS:
            if key in config:
                self._set_class(key, config[key])
        return {k: v for k, v in config.items() if k not in KEYS}

    def take_arg(self, key: str, text: str) -> None:
        section, _, leaf = key.partition(".")
        leaf = leaf.removeprefix("init_args.")
        if not leaf or leaf == "class_path":
            value = load_yaml(text, f"--{key}") if text.lstrip()[:1] == "{" else _scalar(text) \
                if text.lower() in ("null", "none") else text
            self._set_class(section, value)
        else:
            self._set_args(section, {leaf: _scalar(text)})

    def for_framework(self, framework: str) -> dict[str, dict | None]:
        """Each key given, named for ``framework`` (``translate``); ``ConfigError`` for one it
        cannot run, or a ``ReduceLROnPlateau`` without the metric it watches."""
        optimizer = self.specs.get("optimizer")
        scheduler = self.specs.get("lr_scheduler")
        if scheduler and _name(scheduler["class_path"] or "") == "ReduceLROnPlateau" \
                and not scheduler["init_args"].get("monitor"):
            raise ConfigError("lr_scheduler: ReduceLROnPlateau needs the metric it watches: "
                              "--lr_scheduler.monitor val/loss (or val/acc with --lr_scheduler.mode max)")
        base_lr = _learning_rate(optimizer and {
            **optimizer, "class_path": _full_path(str(optimizer["class_path"]), "optimizer", framework)})
        return {key: translate(key, self.specs[key], framework, base_lr) for key in KEYS if key in self.specs}


def bare_name_candidates(name: str, key: str, framework: str) -> list[str]:
    """Where a bare class name that ``translate`` left bare may be found on ``framework``."""
    return [f"{TORCH_PACKAGE[key]}.{name}"] if framework == "torch" else [f"{MLX_PACKAGE}.{name}"]


def override_note(section: Any, model_name: str = "Classifier") -> str | None:
    """The ``note:`` line when the config's ``optimizer`` replaces the model's own
    ``configure_optimizers``; ``ConfigError`` for an ``lr_scheduler`` without an ``optimizer``."""
    optimizer, scheduler = section.get("optimizer"), section.get("lr_scheduler")
    if scheduler and not optimizer:
        raise ConfigError("--lr_scheduler needs an --optimizer (e.g. --optimizer Adam --optimizer.lr 0.001): "
                          "without one the model's own optimizer and model.lr_schedule are used")
    if not optimizer:
        return None
    unused = " (model.lr, lr_schedule, betas and weight_decay are unused)" if model_name == "Classifier" else ""
    return f"--optimizer replaces {model_name}.configure_optimizers{unused}"
