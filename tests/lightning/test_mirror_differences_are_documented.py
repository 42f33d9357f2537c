"""Every Lightning test the mirror is known not to pass is listed, with its reason, in docs/mlx-lightning.md."""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "mlx-lightning.md"
SECTION = "## Lightning's tests the mirror does not pass"


def marked_tests() -> dict[str, str]:
    """``{"<dir>/<file>::<test>": reason}`` of every ``mirror_differs`` mark under tests/lightning (read from the
    source: a decorator on the test or on one of its parameters)."""
    marked = {}
    for path in sorted(HERE.rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        constants = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                     for target in node.targets if isinstance(target, ast.Name)}
        for test in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
            for node in (n for decorator in test.decorator_list for n in ast.walk(decorator)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "mirror_differs":
                    reason = node.args[0]
                    reason = constants[reason.id] if isinstance(reason, ast.Name) else reason
                    marked[f"{path.relative_to(HERE).as_posix()}::{test.name}"] = ast.literal_eval(reason)
    return marked


def test_the_reader_finds_the_marks_on_tests_and_on_their_parameters():
    marked = marked_tests()
    assert "checkpointing/test_model_checkpoint.py::test_model_checkpoint_file_extension" in marked
    assert "models/test_hooks.py::test_trainer_model_hook_system_eval" in marked  # a pytest.param's mark
    assert all(reason.strip() for reason in marked.values())


def test_every_marked_test_is_listed_in_the_docs_section_on_the_tests_the_mirror_does_not_pass():
    section = DOC.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    missing = [name for name in marked_tests() if f"`{name}`" not in section]
    assert missing == []
