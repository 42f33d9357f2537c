"""The command line, read once into one ``CommandLine`` that the rest asks.

``CommandLine.read`` takes ``--framework`` out wherever it stands and splits out, once, the
options the project rewrites before a parser sees them: ``--config`` and the options the config
translation (``cnn.config_translation``) handles (``rewritten_option``). ``read_configs`` then reads each
``--config`` once, before a framework (whose import takes seconds) is loaded: a missing,
unreadable, empty or malformed file is the same one-line ``ConfigError`` on both sides, and a
config that is not a regular file (``--config /dev/stdin``, a shell's ``<(...)``: a pipe, which
reads once) is handed to the parser as the text read from it. The config translation
(``cnn.config_translation.translate_args``) and a user's classes (``cnn.user_classes.named_classes``) change
the sections held here; ``args()`` is the command line the parser reads: each config as given
where nothing changed it, else its sections as YAML.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from cnn.bounded_yaml import load_yaml, read_config
from cnn.errors import ConfigError
from cnn.optimizers import OptimizerKeys

FRAMEWORKS = ("torch", "mlx")
DEFAULT_FRAMEWORK = "torch"
CONFIG_FLAGS = ("-c", "--config")
# The options the config translation (``cnn.config_translation``) rewrites for the side that runs:
# class paths (``CLASS_KEYS``), the network inside the Classifier (``NET_KEY``), the sections that may
# name a class of their own (``--model CLASS``, ``model: {class_path: ...}``), and the keys one
# side's parser has and the other's lacks, with the value that side prints when unset (``ONLY_ON``).
CLASS_KEYS = ("trainer.callbacks", "trainer.logger", "trainer.plugins")
NET_KEY = "model.net"
SECTION_KEYS = {"model": "model", "data": "data", "model.class_path": "model", "data.class_path": "data"}
ONLY_ON = {"torch": {"trainer.model_registry": None, "weights_only": None},
           "mlx": {"trainer.compile": False}}


def other_framework(framework: str) -> str:
    return FRAMEWORKS[1 - FRAMEWORKS.index(framework)]


def rewritten_option(key: str | None, framework: str) -> bool:
    """Whether the config translation rewrites the option ``--key`` of a command line for ``framework``."""
    return key is not None and (key in {*CLASS_KEYS, NET_KEY, *SECTION_KEYS, *ONLY_ON[other_framework(framework)]}
                                or OptimizerKeys.owns(key))


class UsageError(Exception):
    """A command line we cannot run; the message is the one line to show."""


@dataclass
class Option:
    """An option the project may rewrite: ``name`` as written (``--config``, ``-c``,
    ``--trainer.callbacks+``), its ``value`` (for a config: the path, or the YAML text given or
    read from a pipe), ``inline`` when written as one ``name=value`` word. A config's ``sections``
    (read once) and ``as_read`` (to tell whether anything changed them)."""

    name: str
    value: str
    inline: bool = False
    sections: Any = None
    as_read: Any = None

    @property
    def key(self) -> str | None:
        """The parser key (``trainer.callbacks``); None for ``-c``."""
        return self.name[2:].rstrip("+") if self.name.startswith("--") else None

    @property
    def is_config(self) -> bool:
        return self.name in CONFIG_FLAGS

    def words(self) -> list[str]:
        if self.is_config and self.sections is not None and self.sections != self.as_read:
            return [self.name, yaml.safe_dump(self.sections, sort_keys=False)]
        return [f"{self.name}={self.value}"] if self.inline and not self.is_config else [self.name, self.value]


@dataclass
class CommandLine:
    """A command line without its ``--framework``: ``words``, each a word passed on as written or
    an ``Option`` the project may rewrite, in order."""

    framework: str
    words: list[str | Option] = field(default_factory=list)

    @classmethod
    def read(cls, argv: list[str], default: str | None = None) -> CommandLine:
        """``argv`` read once: ``--framework X`` / ``--framework=X`` taken out wherever it stands
        (else ``default``, else ``$CNN_FRAMEWORK``, else torch), the rewritten options split out."""
        rest, framework, i = [], default or os.environ.get("CNN_FRAMEWORK", DEFAULT_FRAMEWORK), 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--framework":
                if i + 1 >= len(argv):
                    raise UsageError("--framework needs a value: torch or mlx")
                framework, i = argv[i + 1], i + 2
                continue
            if arg.startswith("--framework="):
                framework = arg.split("=", 1)[1]
            else:
                rest.append(arg)
            i += 1
        # a tool's --framework (bench's ``both``) or an unknown one: nothing to rewrite
        return cls(framework, _split_options(rest, framework) if framework in FRAMEWORKS else list(rest))

    @property
    def command(self) -> str | None:
        """The first word (a subcommand or a tool), or None."""
        return self.args()[0] if self.words else None

    def options(self) -> list[Option]:
        return [w for w in self.words if isinstance(w, Option)]

    def configs(self) -> list[Option]:
        """The ``--config`` options, in order (their ``sections`` set by ``read_configs``)."""
        return [w for w in self.words if isinstance(w, Option) and w.is_config]

    def add_option(self, name: str, value: str) -> None:
        self.words.append(Option(name, value))

    def args(self) -> list[str]:
        """The command line the parser reads."""
        return [word for w in self.words for word in ([w] if isinstance(w, str) else w.words())]

    def read_configs(self) -> CommandLine:
        """Each ``--config`` read once (see the module; one read already is not read again); returns self."""
        for option in self.configs():
            if option.sections is not None:
                continue
            if "\n" in option.value:  # jsonargparse also takes the YAML itself in place of a path
                option.sections = load_yaml(option.value, option.name) or {}
            else:
                path = option.value
                text = None if os.path.isfile(path) or not os.path.exists(path) else _read_pipe(path)
                option.sections = read_config(path, text)
                if text is not None:
                    option.value = text if "\n" in text else text + "\n"
            option.as_read = option.sections
        return self


def _split_options(args: list[str], framework: str) -> list[str | Option]:
    words: list[str | Option] = []
    i = 0
    while i < len(args):
        name, eq, inline = args[i].partition("=")
        key = name[2:].rstrip("+") if name.startswith("--") else None
        if (name in CONFIG_FLAGS or rewritten_option(key, framework)) and (eq or i + 1 < len(args)):
            value, i = (inline, i + 1) if eq else (args[i + 1], i + 2)
            words.append(Option(name, value, bool(eq)))
            continue
        words.append(args[i])
        i += 1
    return words


def _read_pipe(path: str) -> str:
    """The text of the config at ``path``, a pipe or a device: read once (it cannot be read again)."""
    if os.path.isdir(path):
        raise ConfigError(f"config file {path} is a directory; name a YAML file")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} cannot be read: {error}") from None
