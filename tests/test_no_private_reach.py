"""No code in ``cnn/`` reaches into another object's underscore members.

What a callback, a loop or a tool needs from the Trainer or a module is a public property or a
package-level function (``cnn/mx/lightning/trainer/call.py`` is the model). A library's internal is
used in one module per library, which names each internal and the versions it was read from, and
whose own test fails when one goes missing: Lightning's in ``cnn/pt/lightning_internals.py``,
MLX's in ``cnn/mx/lightning/utilities/mlx_internals.py``, jsonargparse's in
``cnn/jsonargparse_internals.py``. Overriding a library's private method is an internal use too:
the override's ``super()._name()`` is allowed only for a name its library's module lists as
overridden (Lightning documents nothing there).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cnn.pt import lightning_internals

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "cnn"
INTERNALS_MODULES = {CNN / "pt" / "lightning_internals.py", CNN / "mx" / "lightning" / "utilities" / "mlx_internals.py",
                     CNN / "jsonargparse_internals.py"}
SOURCES = [path for path in sorted(CNN.rglob("*.py")) if path not in INTERNALS_MODULES]
# The library methods an override of ours may call through super(): those listed as overridden.
OVERRIDDEN = {name for _, name in lightning_internals.OVERRIDDEN}


def underscore_reaches(source: str) -> list[tuple[int, str]]:
    """``(line, name)`` of every ``obj._name`` (and ``getattr(obj, "_name")``) where ``obj`` is neither ``self``
    nor ``cls`` nor a module this source imports (a library's private module-level name is not an object's);
    a parent's method called from an override is named ``super()._name``."""
    tree = ast.parse(source)
    modules = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    owners = {"self", "cls"} | modules

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    def owned(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id in owners

    def is_super(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr) and not owned(node.value):
            found.append((node.lineno, f"super().{node.attr}" if is_super(node.value) else node.attr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str) \
                and private(node.args[1].value) and not owned(node.args[0]):
            found.append((node.lineno, node.args[1].value))
    return found


def test_the_reach_finder_sees_attribute_getattr_and_super_reaches_but_not_own_members_or_modules():
    source = ("import typing\n"
              "class A(Base):\n"
              "    def _f(self, trainer, opt):\n"
              "        self._mine = typing._UnionGenericAlias\n"
              "        trainer._call_both('on_fit_start')\n"
              "        super()._f(trainer, opt)\n"
              "        return getattr(opt, '_schedulers', {})\n")
    assert sorted(underscore_reaches(source)) == [(5, "_call_both"), (6, "super()._f"), (7, "_schedulers")]


def test_only_a_method_lightning_internals_lists_as_overridden_may_be_called_through_super():
    assert "_run_subcommand" in OVERRIDDEN and "_terminate_all" in OVERRIDDEN
    assert "_get_next_version" in OVERRIDDEN and "_should_skip_saving_checkpoint" not in OVERRIDDEN


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_in_cnn_reaches_into_another_objects_underscore_members(path):
    reaches = [(line, name) for line, name in underscore_reaches(path.read_text())
               if name.removeprefix("super().") not in OVERRIDDEN or not name.startswith("super().")]
    assert reaches == []
