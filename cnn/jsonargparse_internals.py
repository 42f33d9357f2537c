"""Every jsonargparse internal the project uses, in one place, read from jsonargparse 4.53.0.

jsonargparse offers no public way to list a parser's options or to change the type one of them
parses into; ``cnn.config`` needs both (to keep ``--model.net``'s help short, and to read a whole
number of batches as an int). Each is an underscore member whose meaning was read in the sources
of ``jsonargparse`` 4.53.0, the range ``pyproject.toml`` accepts (``>=4.53.0,<4.54``).
``tests/cli/test_jsonargparse_internals.py`` checks that the installed jsonargparse still has every
one of them, so an upgrade that drops or renames one fails a test instead of silently changing
what a command line means.

* ``ArgumentParser._actions`` (argparse's, which jsonargparse's ``ArgumentParser`` subclasses and
  fills, ``jsonargparse/_core.py``): every option of a parser, as its action (``parser_actions``).
* ``ActionTypeHint`` (``jsonargparse/_typehints.py``, not exported) and its ``_typehint``: the
  action of an option with a type, and the type it parses into (``option_type``,
  ``set_option_type``).
* ``typing._UnionGenericAlias`` (the standard library's): a ``Union`` built with its members in
  the order given, which ``typing.Union[...]`` does not promise (``ordered_union``).
* ``_loaders_dumpers.yaml_load``: the YAML loader ``json_or_yaml_load`` calls by name, past
  ``jsonargparse.set_loader`` (``replace_yaml_load``).
"""

from __future__ import annotations

import typing
from typing import Any, Optional

from jsonargparse._typehints import ActionTypeHint

READ_FROM = ("4.53.0",)


def parser_actions(parser: Any) -> list[Any]:
    """Every option of ``parser`` (a jsonargparse ``ArgumentParser``), as its argparse action."""
    return parser._actions


def option_type(action: Any) -> Optional[Any]:
    """The type ``action``'s option parses into; None for an option without one (``--help``, ``--config``)."""
    return action._typehint if isinstance(action, ActionTypeHint) else None


def set_option_type(action: Any, hint: Any) -> None:
    """Make ``action``'s option (one that has a type) parse into ``hint`` from now on."""
    action._typehint = hint


def ordered_union(members: tuple[Any, ...]) -> Any:
    """``Union[members]`` with its members in this order (``typing.Union[...]`` may return an equal
    one, cached, in another order)."""
    return typing._UnionGenericAlias(typing.Union, members)


def replace_yaml_load(wrap: Any, marker: str) -> None:
    """Make jsonargparse load every YAML text through ``wrap(its own loader)``: the loader of its
    ``yaml`` parser mode (``jsonargparse.set_loader``, public) and the module function
    ``_loaders_dumpers.yaml_load``, which ``json_or_yaml_load`` calls by name for a value given
    to an option typed int, float, bool or str (``_typehints.adapt_typehints``). ``marker``: an
    attribute set on the wrapped loader, so that a second call wraps nothing twice."""
    import yaml
    from jsonargparse import _loaders_dumpers, get_loader, set_loader

    if getattr(get_loader("yaml"), marker, False):
        return
    wrapped = wrap(_loaders_dumpers.yaml_load)
    setattr(wrapped, marker, True)
    set_loader("yaml", wrapped, exceptions=(yaml.YAMLError,))
    _loaders_dumpers.yaml_load = wrapped
