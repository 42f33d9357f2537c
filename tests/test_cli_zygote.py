"""The suite's forked ``python cli.py`` (tests.cli_zygote) is indistinguishable from a fresh one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import cli_zygote
from tests.cli_runs import ROOT, run_cli


def fresh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_a_forked_command_line_prints_and_exits_as_a_fresh_one():
    args = ("fit", "--config", "configs/mnist.yaml", "--trainer.max_epochs", "abc")
    forked = cli_zygote.run(args, ROOT, 300, {})
    assert forked is not None, "the zygote refused a torch trainer command"
    expected = fresh(*args)
    assert (forked.returncode, forked.stdout, forked.stderr) == (expected.returncode, expected.stdout,
                                                                 expected.stderr)
    assert forked.returncode == 1 and forked.stderr.startswith("error:")


@pytest.mark.parametrize("args, popen", [
    (("--framework", "mlx", "fit"), {}),  # MLX imports what the zygote has not
    (("convert", "a.ckpt", "--to", "mlx", "--out", "b.safetensors"), {}),  # a tool
    (("fit",), {"env": {}}),  # an environment read at start-up
])
def test_what_a_fork_could_show_differently_runs_fresh(args, popen):
    assert cli_zygote.run(args, ROOT, 300, popen) is None


def test_a_forked_command_line_past_its_timeout_is_killed(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("fit", "--config", "configs/mnist.yaml", "--trainer.default_root_dir", str(tmp_path),
                "--trainer.enable_progress_bar", "false", timeout=1)
    # the zygote is free again and answers the next command
    assert run_cli("fit", "--model.lr", "-1").stderr.startswith("error: model.lr")
