"""The package's import graph: every module imports, no two modules import each other in a
circle, and dependencies point one way (core <- sides <- tools <- CLI)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import cnn

PACKAGE_DIR = Path(cnn.__file__).parent
SIDES_AND_DATA = ("cnn.pt", "cnn.mx", "cnn.data")


def module_files() -> dict[str, Path]:
    """Every module under ``cnn/``, by dotted name (a package by its ``__init__.py``)."""
    files = {"cnn": PACKAGE_DIR / "__init__.py"}
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="cnn."):
        relative = Path(*info.name.split(".")[1:])
        files[info.name] = PACKAGE_DIR / relative / "__init__.py" if info.ispkg \
            else PACKAGE_DIR / relative.with_suffix(".py")
    return files


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``cnn.*`` modules ``name`` imports anywhere in its source, functions included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing module's package
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # ``from cnn.mx import checkpoint`` imports the submodule when there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t == "cnn" or t.startswith("cnn."))
    return {t for t in found if t in known and t != name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None (depth-first search, three colours)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_every_module_of_the_package_imports():
    names = sorted(module_files())
    assert len(names) > 20 and "cnn.weights" in names and "cnn.tools.convert" in names
    for name in names:
        importlib.import_module(name)


def test_the_graph_sees_imports_made_inside_functions():
    graph = import_graph()
    assert "cnn.mx.checkpoint" in graph["cnn.tools.convert"]  # imported in write_mlx_checkpoint


def test_no_module_imports_itself_through_a_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_reports_a_circle_it_is_given():
    graph = {"cnn.a": {"cnn.b"}, "cnn.b": {"cnn.c"}, "cnn.c": {"cnn.a"}, "cnn.d": set()}
    assert find_cycle(graph) == ["cnn.a", "cnn.b", "cnn.c", "cnn.a"]
    assert find_cycle({"cnn.a": {"cnn.b"}, "cnn.b": set()}) is None


def test_neither_side_nor_the_data_layer_imports_a_tool():
    graph = import_graph()
    checked = [name for name in graph if name.startswith(SIDES_AND_DATA)]
    assert len(checked) > 10
    offenders = {name: sorted(t for t in graph[name] if t.startswith("cnn.tools"))
                 for name in checked}
    assert {name: tools for name, tools in offenders.items() if tools} == {}


def first_import_lines(path: Path) -> tuple[int | None, int | None]:
    """Line of the first module-level import of ``mlx`` and of ``cnn.mx`` in a file."""
    first_mlx = first_cnn_mx = None
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if first_mlx is None and any(n == "mlx" or n.startswith("mlx.") for n in names):
            first_mlx = node.lineno
        if first_cnn_mx is None and any(n == "cnn.mx" or n.startswith("cnn.mx.") for n in names):
            first_cnn_mx = node.lineno
    return first_mlx, first_cnn_mx


def test_every_file_that_imports_mlx_imports_cnn_mx_first():
    # cnn.mx hands MLX an optimised BLAS on import, which only works before mlx itself is
    # loaded; modules inside cnn/mx get that from their package's __init__ automatically.
    root = PACKAGE_DIR.parent
    files = [p for p in [*PACKAGE_DIR.rglob("*.py"), *(root / "tests").rglob("*.py"), root / "cli.py"]
             if PACKAGE_DIR / "mx" not in p.parents]
    importing_mlx = {p: first_import_lines(p) for p in files if first_import_lines(p)[0] is not None}
    assert importing_mlx, "some tool or test imports mlx at module level"
    late = [f"{p.relative_to(root)}:{mlx_line}" for p, (mlx_line, cnn_mx_line) in importing_mlx.items()
            if cnn_mx_line is None or cnn_mx_line > mlx_line]
    assert not late, f"mlx imported before cnn.mx in {late}"


def test_the_data_layer_imports_of_the_core_only_itself_and_the_leaf_modules():
    # the data layer is the bottom of the core: limits, config, metrics... build on it, not it on them; it reads
    # a user's files through the one opener (cnn.user_files) and writes through cnn.atomic
    allowed = ("cnn.data", "cnn.errors", "cnn.atomic", "cnn.user_files")
    graph = import_graph()
    data = {name: targets for name, targets in graph.items() if name.startswith("cnn.data")}
    assert len(data) > 5 and "cnn.data.datasets" in graph["cnn.limits"]
    upward = {name: sorted(t for t in targets if not t.startswith(allowed))
              for name, targets in data.items()}
    assert {name: targets for name, targets in upward.items() if targets} == {}


def imports_inside_functions(path: Path) -> list[int]:
    """Lines of the imports a module makes inside a function (a dependency its header hides)."""
    return sorted(inner.lineno for node in ast.walk(ast.parse(path.read_text(), str(path)))
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for inner in ast.walk(node) if isinstance(inner, (ast.Import, ast.ImportFrom)))


def test_the_config_limits_import_everything_they_use_at_the_top():
    assert imports_inside_functions(module_files()["cnn.limits"]) == []
    assert imports_inside_functions(module_files()["cnn.tools.convert"]) != []  # the finder finds
