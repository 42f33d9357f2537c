"""A user's own LightningModule and DataModule, named by class path, as LightningCLI's subclass mode.

``--model mymods.MyModel`` (or ``model: {class_path: mymods.MyModel, init_args: {...}}`` in a config)
and ``--data mymods.MyData`` replace our Classifier and DataModule; without them the CLIs are what
they always were. Each CLI asks ``named_classes`` what its command line names BEFORE it builds its
parser: only a section that names a class becomes a class-path section (``--model.lr`` then sets
that class's ``lr``), and only the links its classes can take are made (``NamedClasses``): the
dataset's image shape and classes go into a model that takes ``in_channels``, ``image_size``,
``num_classes``, ``classes`` (by those names), the seed into a model or data that takes ``seed``.

Each named class is imported and checked here, so a wrong one is one ``error:`` line: a module
that cannot be imported, a name that is no class, a class of the other framework (by the modules
its bases come from: no framework is imported to tell), a class that is no LightningModule or
DataModule of this side. Importing a user's module runs its code, as a Python script's imports do.

Framework-free: each side passes its own base classes and its own Classifier and DataModule.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any

from cnn.bounded_yaml import load_yaml, read_config
from cnn.command_line import SECTION_KEYS, CommandLine
from cnn.config_translation import KIND, check_class
from cnn.errors import ConfigError

SECTIONS = ("model", "data")
# The modules each side's classes come from.
FRAMEWORK_ROOTS = {"torch": ("torch", "lightning", "pytorch_lightning", "cnn.pt"),
                   "mlx": ("mlx", "cnn.mx")}
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class FrameworkClasses:
    """One side's classes for ``model`` and ``data``: the bases a user's class must derive from
    (``model_base``, ``data_base``: the side's ``LightningModule`` and ``LightningDataModule``),
    and ours (the defaults, whose subclasses log ``cnn.schema``'s tags and take our data's
    batches)."""

    model_base: type
    data_base: type
    classifier: type
    datamodule: type


@dataclass(frozen=True)
class NamedClasses:
    """What a command line names for ``model`` and ``data``: a class path each, or ``None``
    (ours, the class-mode section every existing config is written for); ``model_params`` /
    ``data_params``: the ``__init__`` parameters of the named class; ``model_is_ours``: the model
    is our Classifier or a subclass (it logs ``val/acc``); ``data_is_ours``: the data is our
    DataModule or a subclass (it has a ``dataset`` and our batches)."""

    model: str | None = None
    data: str | None = None
    model_params: frozenset[str] = frozenset()
    data_params: frozenset[str] = frozenset()
    model_is_ours: bool = True
    data_is_ours: bool = True

    @property
    def model_name(self) -> str:
        """What the model is called in a user's line: ``Classifier`` for ours (or a subclass),
        else the named class's own name."""
        return "Classifier" if self.model_is_ours or not self.model else self.model.rpartition(".")[2]

    def model_takes(self, name: str) -> bool:
        return self.model is None or name in self.model_params

    def data_takes(self, name: str) -> bool:
        return self.data is None or name in self.data_params

    def parser_class(self, section: str, side: FrameworkClasses) -> type | tuple[type, ...]:
        """What ``section`` is parsed for: our class, or, where the section names a class, the
        base class that class derives from (a class-path section, LightningCLI's subclass
        mode)."""
        if section == "model":
            return side.model_base if self.model else side.classifier
        if not self.data:
            return side.datamodule
        return side.data_base

    def key(self, section: str, name: str) -> str:
        """The parser key of ``section``'s argument ``name``: ``model.lr``, or
        ``model.init_args.lr`` where the section names a class."""
        return f"{section}.init_args.{name}" if getattr(self, section) else f"{section}.{name}"


# A command line naming no class: our Classifier and DataModule, every link.
NO_NAMED_CLASSES = NamedClasses()


def _class_path(value: Any) -> str | None:
    """The class path a ``model``/``data`` value names (a dotted name, or a dict with
    ``class_path``), or None: a section of arguments, a config file, nothing."""
    if isinstance(value, dict):
        path = value.get("class_path")
        return path if isinstance(path, str) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[:1] == "{":
        return _class_path(load_yaml(text, "--model/--data"))
    if "." not in text or "\n" in text or text.lower().endswith(CONFIG_SUFFIXES) or os.path.isfile(text):
        return _class_path(read_config(text)) if os.path.isfile(text) else None
    return text


def named_class_paths(line: CommandLine) -> dict[str, str]:
    """The class path each section is left naming by ``line`` (a trainer command line, its configs
    read), as the parser will read them: the last one named wins."""
    named: dict[str, str] = {}
    for option in line.read_configs().options():
        section = SECTION_KEYS.get(option.key) if option.key else None
        if section:
            value = option.value
            # LightningCLI finds a short name among the subclasses imported; here nothing is yet
            if value.isidentifier() and value[:1].isupper() and not os.path.isfile(value):
                raise ConfigError(f"--{section} {value}: name the class with its module, "
                                  f"e.g. mymodule.{value}, importable from here")
            sections = {section: value}
        elif option.is_config:
            config = option.sections
            sections = {s: config.get(s) for s in SECTIONS if isinstance(config, dict)}
        else:
            continue
        for section, section_value in sections.items():
            path = _class_path(section_value)
            if path:
                named[section] = path
    return named


def framework_of(cls: type) -> str | None:
    """The framework ``cls`` is written for, by the modules its bases come from (``lightning``,
    ``torch`` or ``cnn.pt``: torch; ``mlx`` or ``cnn.mx``: mlx); None: neither (framework-free)."""
    for base in cls.__mro__:
        module = str(getattr(base, "__module__", ""))
        for framework, roots in FRAMEWORK_ROOTS.items():
            if any(module == root or module.startswith(root + ".") for root in roots):
                return framework
    return None


def _import(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


def _parameters(cls: type) -> frozenset[str]:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def check_own_class(path: str, section: str, framework: str, base: type) -> type:
    """The class at ``path`` for ``section`` on ``framework``; ``ConfigError`` (one line) when it
    cannot be imported, is no class, is written for the other framework, or does not derive from
    ``base``."""
    check_class(path, section, None)
    cls = _import(path)
    written_for = framework_of(cls)
    kind = KIND[section]
    if written_for not in (None, framework):
        raise ConfigError(f"{section}: {path} is written with {written_for}; {framework} needs a {kind} "
                          f"written with {framework}: give one, or run with --framework {written_for}")
    if not issubclass(cls, base):
        raise ConfigError(f"{section}: {path} is not a {kind} (a subclass of {base.__module__}.{base.__qualname__})")
    return cls


def named_classes(line: CommandLine, side: FrameworkClasses, notes: list[str]) -> NamedClasses:
    """What ``line`` (its configs read and translated) names for ``model`` and ``data`` on its
    framework, each named class checked (``check_own_class``); each config's plain section of
    arguments for a section that names a class is made that class's (``for_named_class``; notes
    appended)."""
    named = named_class_paths(line)
    found: dict[str, Any] = {}
    for section, base in (("model", side.model_base), ("data", side.data_base)):
        if section not in named:
            continue
        cls = check_own_class(named[section], section, line.framework, base)
        ours = side.classifier if section == "model" else side.datamodule
        found.update({section: named[section], f"{section}_params": _parameters(cls),
                      f"{section}_is_ours": issubclass(cls, ours)})
    own = NamedClasses(**found)
    if named:
        for_named_class(line, own, notes)
    return own


def for_named_class(line: CommandLine, own: NamedClasses, notes: list[str]) -> None:
    """Each ``--config``'s plain ``model``/``data`` section (arguments of our class, e.g.
    ``configs/mnist.yaml``'s) given to the class the command line names instead: the arguments it
    takes as its ``init_args``, the others left out with a note. So ``--config configs/mnist.yaml
    --model mymods.MyModel`` runs with the config's trainer and data."""
    for option in line.configs():
        config = option.sections
        changed = dict(config)
        # a config the translation changed reaches the parser as YAML text, not as its file
        source = "the config" if "\n" in option.value or config != option.as_read else option.value
        for section in SECTIONS:
            path, plain = getattr(own, section), config.get(section)
            if not path or not isinstance(plain, dict) or "class_path" in plain:
                continue
            params = getattr(own, f"{section}_params")
            dropped = [key for key in plain if key not in params]
            if dropped:
                notes.append(f"{section}: {', '.join(dropped)} (from {source}) "
                             f"{'is not an argument' if len(dropped) == 1 else 'are not arguments'} of "
                             f"{path}; left out")
            changed[section] = {"class_path": path,
                                "init_args": {k: v for k, v in plain.items() if k in params}}
        option.sections = changed


def as_our_sections(config: Any, own: NamedClasses) -> Any:
    """A parsed subcommand section where ``model``/``data`` naming our class (or a subclass) are
    their ``init_args``, as our class-mode sections hold them: what ``cnn.limits.check_config``
    checks, so ``--model cnn.pt.module.Classifier --model.lr -1`` is refused as ``--model.lr -1``
    is. A user's class's arguments are its own business."""
    sections = [s for s in SECTIONS if getattr(own, s) and getattr(own, f"{s}_is_ours")]
    if not sections:
        return config
    view = config.clone()
    for section in sections:
        view[section] = view[section].init_args
    return view


def init_args(section: Any) -> dict:
    """A parsed ``model``/``data`` section's arguments: its ``init_args`` where it names a class."""
    if section is None:
        return {}
    values = section.as_dict() if hasattr(section, "as_dict") else dict(section)
    return dict(values.get("init_args") or {}) if "class_path" in values else values


def section_name(section: Any) -> str:
    """The short class name a ``model``/``data`` section names (``MyData``), or ``""``."""
    values = section.as_dict() if hasattr(section, "as_dict") else dict(section or {})
    return str(values.get("class_path") or "").rsplit(".", 1)[-1]


def untestable_reason(model: Any, datamodule: Any, side: FrameworkClasses) -> str | None:
    """Why ``fit`` cannot end with a test of ``model`` on ``datamodule`` (a user's model without
    ``test_step``, a user's data without ``test_dataloader``), or None."""
    if getattr(type(model), "test_step", None) is getattr(side.model_base, "test_step", None):
        return f"{type(model).__name__} has no test_step"
    # the LightningDataModule's loaders are placeholders
    if datamodule is not None and getattr(type(datamodule), "test_dataloader", None) \
            is getattr(side.data_base, "test_dataloader", None):
        return f"{type(datamodule).__name__} has no test_dataloader"
    return None
