"""One config, both frameworks: what a config written for one side becomes on the other.

A config printed (``fit --print_config``) or saved (``config.yaml`` in a run folder) by either
framework runs unchanged on the other. Before parsing, each CLI hands its command line to
``translate_args``, which rewrites ``--config`` files and the class-path options
(``--trainer.callbacks``, ``--trainer.logger``, ``--trainer.plugins``):

* Lightning's callbacks and loggers (``lightning.pytorch.callbacks.EarlyStopping``) and their MLX
  mirrors (``cnn.mx.lightning.callbacks.EarlyStopping``) are named for the side that runs; a
  Lightning class without a mirror is a ``ConfigError`` naming it; init arguments the class on
  this side lacks are dropped (with a note unless their value is off: null, false, 0);
* the project's classes for what the other side does by itself (the torch side's ``FaultGuard``,
  ``ResumeState`` and safe checkpoint IO, the MLX checkpoint IO) are left out: each side adds its
  own by default;
* keys only one side has (``ONLY_ON``) are left out, with a one-line note when their value is
  not the one that side prints by default;
* ``optimizer`` and ``lr_scheduler`` (LightningCLI's keys): ``torch.optim`` classes and their
  ``mlx.optimizers`` twins, named for the side that runs (``cnn.optimizers``);
* ``model.net``, the network inside the Classifier: the project's networks are named for the side
  that runs (``cnn.pt.resnet.ResNet`` <-> ``cnn.mx.resnet.ResNet``); a class of the other
  framework (``torch.nn.Linear`` on MLX, or a user's class deriving from torch's ``nn.Module``) is
  a ``ConfigError``; any other class is left as written;
* ``model`` and ``data`` naming a class (``cnn.user_classes``): the project's classes are named for the
  side that runs (``cnn.pt.module.Classifier`` <-> ``cnn.mx.module.Classifier``); a user's class is
  left as written (``cnn.user_classes`` refuses one of the other framework).

Framework-free: classes are named by strings; only the class that will run is ever imported, and
a user's ``model.net`` class, to tell which framework it is written with.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import replace
from typing import Any

import yaml

from cnn.bounded_yaml import load_yaml
from cnn.command_line import (
    CLASS_KEYS,
    NET_KEY,
    ONLY_ON,
    SECTION_KEYS,
    CommandLine,
    Option,
    other_framework,
)
from cnn.errors import ConfigError
from cnn.optimizers import OptimizerKeys, bare_name_candidates

# Lightning classes with an MLX mirror of the same name in ``cnn.mx.lightning``, by Lightning module.
MIRRORED = {"callbacks": ("Callback", "DeviceStatsMonitor", "EarlyStopping", "GradientAccumulationScheduler",
                          "LearningRateMonitor", "ModelCheckpoint", "ModelSummary", "RichProgressBar",
                          "StochasticWeightAveraging", "TQDMProgressBar", "Timer"),
            "loggers": ("CSVLogger", "MLFlowLogger", "TensorBoardLogger", "WandbLogger")}
MLX_PACKAGE = "cnn.mx.lightning"
# Class paths of the MLX side that configs (and saved ``config.yaml`` files) named before the mirror took
# Lightning's source layout or a class was renamed, and where each class lives now: read here, so no module
# keeps the old path or name.
MOVED_CLASS_PATHS = {
    "cnn.mx.lightning.pacing.Timer": "cnn.mx.lightning.callbacks.timer.Timer",
    "cnn.mx.lightning.pacing.GradientAccumulationScheduler":
        "cnn.mx.lightning.callbacks.gradient_accumulation_scheduler.GradientAccumulationScheduler",
    "cnn.mx.lightning.swa.StochasticWeightAveraging":
        "cnn.mx.lightning.callbacks.stochastic_weight_avg.StochasticWeightAveraging",
    "cnn.mx.lightning.device_stats.DeviceStatsMonitor":
        "cnn.mx.lightning.callbacks.device_stats_monitor.DeviceStatsMonitor",
    "cnn.mx.lightning.rich_progress.RichProgressBar":
        "cnn.mx.lightning.callbacks.progress.rich_progress.RichProgressBar",
    "cnn.mx.lightning.csv_logs.CSVLogger": "cnn.mx.lightning.loggers.csv_logs.CSVLogger",
    "cnn.mx.lightning.checkpoint.SafetensorsCheckpointIO":
        "cnn.mx.lightning.plugins.io.safetensors_io.SafetensorsCheckpointIO",
    "cnn.mx.checkpoint.CheckpointIO": "cnn.mx.checkpoint.SafeCheckpointIO",  # its name before its torch twin's
}
LIGHTNING_PACKAGES = ("lightning.pytorch", "pytorch_lightning")
# The project's classes for what the other side does natively (and adds by default): left out.
NATIVE_ELSEWHERE = {"mlx": ("cnn.pt.callbacks.FaultGuard", "cnn.pt.callbacks.ResumeState",
                            "cnn.pt.checkpoint.SafeCheckpointIO"),
                    "torch": ("cnn.mx.checkpoint.SafeCheckpointIO", "cnn.mx.checkpoint.CheckpointIO")}
SIDE_PACKAGES = {"torch": "cnn.pt", "mlx": "cnn.mx"}  # the project's twins: same module, same name
LIBRARIES = {"torch": "torch", "mlx": "mlx"}
# Trainer keys Lightning prints as null for "the default", which the MLX trainer takes by value.
NULL_IS_DEFAULT = ("precision",)


# Callbacks and loggers that need a package neither framework requires:
# class name -> (module, what to pip install, the project's extra that installs it).
NEEDS_PACKAGE = {"RichProgressBar": ("rich", "rich", "rich"),
                 "MLFlowLogger": ("mlflow", "mlflow-skinny", "mlflow"),
                 "WandbLogger": ("wandb", "wandb", "wandb"),
                 # Lightning's, torch side only (no MLX mirror); the project has no extra for them
                 "CometLogger": ("comet_ml", "comet-ml", None),
                 "NeptuneLogger": ("neptune", "neptune", None)}
# The class keys whose bare class names each side's parser resolves among its own classes.
MIRRORED_BY_KEY = {"trainer.callbacks": "callbacks", "trainer.logger": "loggers"}


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def check_optional_packages(*entries: Any) -> None:
    """A ``ConfigError`` naming the package and the extra when a listed callback or logger needs
    one that cannot be imported (checked before anything is built, so both sides say it in the
    same one line). ``entries``: ``trainer.callbacks``, ``trainer.logger`` (a class path, a
    ``class_path`` entry, a list of them, or a bool)."""
    for entry in entries:
        for item in entry if isinstance(entry, list) else [entry] if entry else []:
            path = item.get("class_path") if isinstance(item, dict) else getattr(item, "class_path", item)
            name = str(path).rsplit(".", 1)[-1]
            if name in NEEDS_PACKAGE and not _importable(NEEDS_PACKAGE[name][0]):
                module, pip_name, extra = NEEDS_PACKAGE[name]
                raise ConfigError(f"{name} needs the {module} package, which is not installed: "
                                  f"pip install {pip_name}" + (f" (or the project's [{extra}] extra)"
                                                               if extra else ""))


def class_path_for(path: str, framework: str) -> str | None:
    """``path`` as ``framework`` names it; None: left out (that side does it by default)."""
    if path in NATIVE_ELSEWHERE[framework]:
        return None
    parts = path.split(".")
    name = parts[-1]
    if framework == "mlx" and any(path.startswith(p + ".") for p in LIGHTNING_PACKAGES):
        kind = next((p for p in parts if p in MIRRORED), None)
        if kind is None or name not in MIRRORED[kind]:
            raise ConfigError(f"{path} has no MLX mirror; remove it or run with --framework torch")
        return f"{MLX_PACKAGE}.{name}"
    if framework == "torch" and path.startswith(MLX_PACKAGE + "."):
        kind = next((k for k, names in MIRRORED.items() if name in names), None)
        if kind is None:
            raise ConfigError(f"{path} has no Lightning counterpart; remove it or run with --framework mlx")
        return f"lightning.pytorch.{kind}.{name}"
    return MOVED_CLASS_PATHS.get(path, path) if framework == "mlx" else path


def _is_off(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, (int, float)) and value == 0)


def _accepted_init_args(path: str) -> set[str] | None:
    """The keyword arguments of the class at ``path``; None: any (or it cannot be imported here)."""
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        params = inspect.signature(cls.__init__).parameters.values()
    except (ImportError, AttributeError, ValueError, TypeError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


# What jsonargparse prints for an init argument it cannot dump (StochasticWeightAveraging's
# default ``device=torch.device("cpu")``), followed by the value's str(): read back as that str.
UNSERIALIZABLE = "Unable to serialize instance "


# What each class key takes, in a user's words.
KIND = {"trainer.callbacks": "Callback", "trainer.logger": "Logger", "trainer.plugins": "plugin",
        "optimizer": "kind of Optimizer", "lr_scheduler": "kind of LRScheduler",
        "model": "LightningModule", "data": "LightningDataModule"}


def check_class(path: str, key: str, base: type | None) -> None:
    """ConfigError (one line) unless ``path`` imports as a class, a subclass of ``base`` (the
    class ``key`` takes on this side) when given. Importing runs the module's code, as a
    Python script's imports do: configs are code (docs/reliability.md)."""
    module, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except Exception as error:  # noqa: BLE001 - ImportError, AttributeError, or what the module raised
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"{key}: {path} cannot be imported: {reason}") from None
    kind = KIND.get(key, "class")
    if not inspect.isclass(found):
        raise ConfigError(f"{key}: {path} is not a class; name a {kind} class")
    if base is not None and not issubclass(found, base):
        raise ConfigError(f"{key}: {path} is not a {kind} (a subclass of "
                          f"{base.__module__}.{base.__qualname__})")



def _class_entry(entry: Any, framework: str, notes: list[str], key: str = "",
                 bases: dict[str, type] | None = None) -> Any:
    """One ``class_path`` entry (a dict or a bare path) for ``framework``; None: left out.
    With ``bases`` (key -> the class it takes), the class is checked (``check_class``)."""
    if isinstance(entry, str):
        path = class_path_for(entry, framework) if "." in entry else _bare_name(entry, framework, key)
        if bases is not None:
            check_optional_packages(path)
        if bases is not None and path and "." in path:
            check_class(path, key, bases.get(key))
        return path
    if not isinstance(entry, dict) or "class_path" not in entry:
        return entry
    path = class_path_for(str(entry["class_path"]), framework)
    if path is None:
        return None
    if "." not in path:
        path = _bare_name(path, framework, key)
    if bases is not None:
        check_optional_packages(path)
    if bases is not None and "." in path:
        check_class(path, key, bases.get(key))
    out = {**entry, "class_path": path}
    init_args = entry.get("init_args")
    if isinstance(init_args, dict):
        init_args = {k: v[len(UNSERIALIZABLE):] if isinstance(v, str) and v.startswith(UNSERIALIZABLE) else v
                     for k, v in init_args.items()}
        accepted = _accepted_init_args(path)
        if accepted is not None:
            for key, value in init_args.items():
                if key not in accepted and not _is_off(value):
                    notes.append(f"{path.rsplit('.', 1)[-1]}({key}={value!r}) has no {framework} counterpart; "
                                 "ignored")
            init_args = {k: v for k, v in init_args.items() if k in accepted}
        out["init_args"] = init_args
    return out


def _bare_name(name: str, framework: str, key: str) -> str:
    """A class named without its module (``--trainer.logger CometLogger``), which the parser
    looks up among the classes of the side that runs: on MLX, one the mirror lacks is a
    ``ConfigError`` naming those it has (the parser would only say it is no path)."""
    kind = MIRRORED_BY_KEY.get(key)
    if framework != "mlx" or kind is None or name in MIRRORED[kind] \
            or not (name.isidentifier() and name[:1].isupper()):  # false, null: not a class
        return name
    raise ConfigError(f"{key}: {name} has no MLX mirror (MLX has {', '.join(MIRRORED[kind])}); "
                      "remove it or run with --framework torch")


def _class_value(value: Any, framework: str, notes: list[str], key: str = "",
                 bases: dict[str, type] | None = None) -> Any:
    if isinstance(value, list):
        return [e for e in (_class_entry(v, framework, notes, key, bases) for v in value)
                if e is not None]
    return _class_entry(value, framework, notes, key, bases)


def _library_of(path: str) -> str | None:
    """The framework library (``torch``, ``mlx``) the class at ``path`` derives from; None when it
    cannot be imported here (the parser then says why) or derives from neither."""
    module, _, name = path.rpartition(".")
    try:
        bases = getattr(importlib.import_module(module), name).__mro__
    except Exception:  # noqa: BLE001 - any failure of a user's module: the parser reports it
        return None
    roots = {str(getattr(base, "__module__", "")).split(".", 1)[0] for base in bases}
    return next((library for library in LIBRARIES.values() if library in roots), None)


def twin_class_for(path: str, framework: str) -> str:
    """A class path of the project's other side (``cnn.pt.X`` on MLX) as its twin on ``framework``
    (same module, same name); any other path as written."""
    other = other_framework(framework)
    if path.startswith(SIDE_PACKAGES[other] + "."):
        return SIDE_PACKAGES[framework] + path[len(SIDE_PACKAGES[other]):]
    return path


def network_class_for(path: str, framework: str) -> str:
    """A ``model.net`` class path as ``framework`` names it: the project's network of the other
    side becomes its twin on this one; a class of the other framework (its library's, or a
    user's class deriving from the other ``nn.Module``) is a ``ConfigError``; anything else is
    left as written. A user's class is imported here to tell, as the parser would next."""
    other = other_framework(framework)
    if path.startswith(SIDE_PACKAGES[other] + "."):
        return twin_class_for(path, framework)
    if path.split(".", 1)[0] == LIBRARIES[other]:
        library = LIBRARIES[other]
    elif path.startswith(("cnn.", LIBRARIES[framework] + ".")):
        library = None  # the project's or this framework's own: nothing to import to tell
    else:
        library = _library_of(path)
    if library == LIBRARIES[other]:
        raise ConfigError(f"{NET_KEY}={path} is written with {library}; {framework} needs a network written "
                          f"with {LIBRARIES[framework]}: give one, or run with --framework {other}")
    return path


def _net_value(value: Any, framework: str) -> Any:
    """A ``model.net`` value (a class path, or a dict with ``class_path``) for ``framework``."""
    if isinstance(value, str) and "." in value:
        return network_class_for(value, framework)
    if isinstance(value, dict) and isinstance(value.get("class_path"), str):
        return {**value, "class_path": network_class_for(value["class_path"], framework)}
    return value


def _section_value(value: Any, framework: str) -> Any:
    """A ``model``/``data`` value naming a class (a class path, or a dict with ``class_path``)
    for ``framework``: the project's class of the other side becomes its twin, and so does a
    network in its ``init_args``; anything else as written."""
    if isinstance(value, str):
        return twin_class_for(value, framework)
    if not isinstance(value, dict) or not isinstance(value.get("class_path"), str):
        return value
    out = {**value, "class_path": twin_class_for(value["class_path"], framework)}
    init_args = value.get("init_args")
    if isinstance(init_args, dict) and init_args.get("net") is not None:
        out["init_args"] = {**init_args, "net": _net_value(init_args["net"], framework)}
    return out


def _drop_key(key: str, value: Any, framework: str, notes: list[str]) -> None:
    other = other_framework(framework)
    if value != ONLY_ON[other][key]:
        notes.append(f"{key}={value!r} is {other} only; ignored by {framework}")


def translate_config(config: dict, framework: str, notes: list[str],
                     bases: dict[str, type] | None = None) -> dict:
    """A parsed YAML config (top-level sections) rewritten for ``framework``; notes appended;
    class paths checked against ``bases`` when given (``check_class``)."""
    config = dict(config)
    for key in ONLY_ON[other_framework(framework)]:
        section, _, leaf = key.rpartition(".")
        if not section and leaf in config:
            _drop_key(key, config.pop(leaf), framework, notes)
        elif isinstance(config.get(section), dict) and leaf in config[section]:
            config[section] = dict(config[section])
            _drop_key(key, config[section].pop(leaf), framework, notes)
    model = config.get("model")
    if isinstance(model, dict) and model.get("net") is not None:
        config["model"] = {**model, "net": _net_value(model["net"], framework)}
    for section in ("model", "data"):
        if section in config:
            config[section] = _section_value(config[section], framework)
    trainer = config.get("trainer")
    if isinstance(trainer, dict):
        trainer = config["trainer"] = dict(trainer)
        if framework == "mlx":
            for leaf in NULL_IS_DEFAULT:
                if leaf in trainer and trainer[leaf] is None:
                    del trainer[leaf]
        for key in CLASS_KEYS:
            leaf = key.split(".", 1)[1]
            if leaf in trainer:
                value = _class_value(trainer[leaf], framework, notes, key, bases)
                if value is None:
                    del trainer[leaf]
                else:
                    trainer[leaf] = value
    return config


def option_text(value) -> str:
    """``value`` as the text of a command-line option jsonargparse parses as YAML: one line of flow YAML, which
    spells NaN and the infinities as YAML does (``.nan``, ``.inf``; JSON's ``NaN`` would reach the parser as a
    string, and a range check would never see the number)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=float("inf"))
    return text.strip().removesuffix("\n...")  # a lone scalar ends its document


def _translated_value(key: str, text: str, framework: str, notes: list[str],
                      bases: dict[str, type] | None) -> str | None:
    """A command-line value of ``key`` for ``framework``; None: drop the option."""
    if key in CLASS_KEYS:
        if text.lstrip()[:1] in ("{", "["):  # a JSON/YAML class spec, or a list of them
            value = _class_value(load_yaml(text, f"--{key}"), framework, notes, key, bases)
            return None if value is None else option_text(value)
        return _class_entry(text, framework, notes, key, bases)
    if key in SECTION_KEYS:
        if text.lstrip()[:1] == "{":
            return option_text(_section_value(load_yaml(text, f"--{key}"), framework))
        return _section_value(text, framework)
    if key == NET_KEY:
        if text.lstrip()[:1] == "{":
            return option_text(_net_value(load_yaml(text, f"--{key}"), framework))
        return _net_value(text, framework)
    value = load_yaml(text, f"--{key}") if text else text
    _drop_key(key, value, framework, notes)
    return None


def translate_args(line: CommandLine, notes: list[str], bases: dict[str, type] | None = None) -> CommandLine:
    """A trainer command line rewritten for the framework it runs: each ``--config``'s sections
    are translated (``translate_config``), class-path options are translated (and, with
    ``bases``, checked: ``check_class``), options only the other side has are dropped; ``line``
    (its configs read) is changed and returned."""
    framework = line.read_configs().framework
    optimizer_keys = OptimizerKeys()  # folded in order, given back as one option each at the end
    words: list[str | Option] = []
    for word in line.words:
        if isinstance(word, str):
            words.append(word)
        elif word.is_config:
            word.sections = translate_config(optimizer_keys.take_config(word.sections), framework, notes, bases)
            words.append(word)
        elif optimizer_keys.owns(word.key):
            optimizer_keys.take_arg(word.key, word.value)
        else:
            new = _translated_value(word.key, word.value, framework, notes, bases)
            if new is not None:
                words.append(replace(word, value=new, inline=False))
    line.words = words
    for key, spec in optimizer_keys.for_framework(framework).items():
        line.add_option(f"--{key}", option_text(spec if bases is None else _checked_spec(key, spec, framework, bases)))
    return line


def _checked_spec(key: str, spec: dict | None, framework: str, bases: dict[str, type]) -> dict | None:
    """An ``optimizer``/``lr_scheduler`` spec whose class imports as a subclass of ``bases[key]``
    (a bare name found among the side's own) and takes every argument given: else one line."""
    if not spec or key not in bases:
        return spec
    path = spec["class_path"]
    if "." not in path:
        found = [p for p in bare_name_candidates(path, key, framework) if _importable_class(p)]
        if not found:
            packages = " or ".join(p.rpartition(".")[0] for p in bare_name_candidates(path, key, framework))
            raise ConfigError(f"{key}: {packages} has no class {path}; name one of its classes or give a class path")
        path = found[0]
    check_class(path, key, bases[key])
    accepted = _accepted_init_args(path)
    unknown = sorted(set(spec.get("init_args") or {}) - (accepted if accepted is not None else set()))
    if accepted is not None and unknown:
        raise ConfigError(f"{key}: {path.rsplit('.', 1)[-1]} has no argument {unknown[0]!r}")
    return {**spec, "class_path": path}


def _importable_class(path: str) -> bool:
    module, _, name = path.rpartition(".")
    return _importable(module) and inspect.isclass(getattr(importlib.import_module(module), name, None))
