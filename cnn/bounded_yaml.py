"""Every YAML the program parses, bounded once its aliases are followed.

YAML's aliases share one value among many places: a few hundred characters (``&a [1,1,...]``,
``&b [*a,*a,...]``, nine levels deep: a "billion laughs") load as a small shared structure that
grows to gigabytes the moment anything walks it (jsonargparse's type checks, a copy, the ``repr``
in an error message). ``load_yaml`` refuses such a text in one line (``ConfigError``), whatever
it is: a config file, a value given on the command line, a ``config.yaml``/``hparams.yaml`` read
back from a run folder, a bench config. ``bound_parser_yaml`` makes jsonargparse, which parses
each command-line value and each ``--config`` itself, load its YAML the same way; ``read_config``
reads a config file with it, each way it can be wrong one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cnn.errors import ConfigError

# What a YAML text may expand to once its aliases are followed: far above any real config (a
# predict_files list of a hundred thousand files), far below what makes jsonargparse's type
# checks run for minutes ("billion laughs": nine levels of ten aliases each are 10^9 values);
# the characters of its strings, each counted at every place an alias puts it, likewise.
MAX_CONFIG_NODES = 1_000_000
MAX_CONFIG_DEPTH = 64
MAX_CONFIG_CHARS = 64 << 20


def check_expansion(value: Any, source: str, follows: str = "its YAML aliases",
                    advice: str = "write it out plainly") -> None:
    """ConfigError unless ``value`` (as ``yaml.safe_load`` built it, aliases shared) has at most
    ``MAX_CONFIG_NODES`` values, ``MAX_CONFIG_DEPTH`` levels and ``MAX_CONFIG_CHARS`` characters of
    keys and strings once every alias is expanded, as a parser walking it would see it. The walk
    stops at the first bound, so a refusal is as cheap as the bound."""
    count, chars, stack = 0, 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if isinstance(node, str):
            chars += len(node)
        if count > MAX_CONFIG_NODES or chars > MAX_CONFIG_CHARS:
            raise ConfigError(f"{source} expands to more than {MAX_CONFIG_NODES:,} values or "
                              f"{MAX_CONFIG_CHARS >> 20} MiB of text once {follows} are followed; {advice}")
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{source} is nested deeper than {MAX_CONFIG_DEPTH} levels "
                              f"(one of {follows} that contains itself?); {advice}")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for item in node.items() for child in item)
        elif isinstance(node, (list, tuple, set)):
            stack.extend((child, depth + 1) for child in node)


def load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load(text)``, refused (``check_expansion``) when its aliases expand too far;
    ``source`` names it in the message (``config file x.yaml``, ``--trainer.logger``)."""
    try:
        value = yaml.safe_load(text)
    except RecursionError:  # brackets nested past python's stack
        raise ConfigError(f"{source} is nested deeper than {MAX_CONFIG_DEPTH} levels") from None
    check_expansion(value, source)
    return value


def _bounded(load):
    """``load`` (jsonargparse's YAML loader: text -> value), followed by ``check_expansion``."""
    def bounded_load(text: str) -> Any:
        try:
            value = load(text)
        except RecursionError:
            raise ConfigError(f"a YAML value is nested deeper than {MAX_CONFIG_DEPTH} levels") from None
        # jsonargparse does not say which option the text is for: a short one is its own name
        source = repr(text) if len(text) <= 60 and "\n" not in text else f"a YAML text of {len(text):,} characters"
        check_expansion(value, source)
        return value
    return bounded_load


def bound_parser_yaml() -> None:
    """Make jsonargparse load YAML through its own loader, then ``check_expansion``: each
    command-line value and ``--config`` it parses (once per process; a second call changes
    nothing)."""
    from cnn.jsonargparse_internals import replace_yaml_load

    replace_yaml_load(_bounded, marker="_cnn_bounded")


def read_config(path: str, text: str | None = None) -> dict:
    """A YAML config file (its ``text`` when already read) as a dict; a missing or unreadable
    file, an empty one (nothing but comments, or ``null``), one that is not a mapping, or one
    that expands too far (``cnn.bounded_yaml``) is a ``ConfigError``."""
    source = f"config file {path}"
    try:
        config = load_yaml(Path(path).read_text() if text is None else text, source)
    except FileNotFoundError:
        raise ConfigError(f"{source} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{source} cannot be read: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} is not valid YAML: {error}".splitlines()[0]) from None
    if config is None:
        raise ConfigError(f"{source} is empty (nothing but comments, or null): give it sections "
                          "(trainer, model, data, ...) or leave --config out")
    if not isinstance(config, dict):
        raise ConfigError(f"{source} is not a mapping of sections (trainer, model, data, ...)")
    return config
