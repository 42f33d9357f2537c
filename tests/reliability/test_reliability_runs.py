"""A run's folder and its stops, as a hostile user meets them, on both frameworks.

What ``--ckpt_path last`` finds (and refuses to invent), who owns a run folder, a fit that
trains nothing or ends untested, and what a signal outside training leaves and says. Every case
runs the real command line; ``trained`` is a one-epoch fit (2 batches) per framework whose run
folder the cases copy before they change it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cnn.weights import read_weights
from tests.cli.test_cli_errors import assert_one_line_error
from tests.cli_runs import ROOT, run_cli, run_cli_process, short_run, wait_for

FRAMEWORKS = ("torch", "mlx")
SUFFIX = {"torch": ".ckpt", "mlx": ".safetensors"}
PREFIX = {"torch": "Torch", "mlx": "Mlx"}
TINY = short_run(eval_batch_size=200)


def fit(framework: str, root: Path, *args: str, **kwargs):
    return run_cli("fit", "--framework", framework, *TINY, "--trainer.default_root_dir",
                   str(root), *args, **kwargs)


def callback_config(yaml: Path, framework: str, kind: str, **init_args) -> Path:
    """A YAML naming one callback of ``tests.signal_at_step``."""
    args = ", ".join(f"{k}: {v}" for k, v in init_args.items())
    yaml.write_text(f"trainer:\n  callbacks:\n    - class_path: tests.signal_at_step."
                    f"{PREFIX[framework]}{kind}\n      init_args: {{{args}}}\n")
    return yaml


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """framework -> the logs root of a finished one-epoch fit (``mnist/<framework>/version_0``)."""
    roots = {}
    for framework in FRAMEWORKS:
        root = tmp_path_factory.mktemp(f"trained-{framework}")
        result = fit(framework, root)
        assert result.returncode == 0, result.stderr[-3000:]
        roots[framework] = root
    return roots


def copy_of(trained: dict[str, Path], framework: str, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the trained logs root and its run folder."""
    root = tmp_path / "logs"
    shutil.copytree(trained[framework], root)
    return root, root / "mnist" / framework / "version_0"


def versions(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("version_*"))


# -- 6. a kill during the first `last` write ---------------------------------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_resume_last_without_a_whole_last_takes_the_newest_checkpoint_says_which_and_clears_temp_files(
        trained, framework, tmp_path):
    root, run = copy_of(trained, framework, tmp_path)
    checkpoints = run / "checkpoints"
    (checkpoints / f"last{SUFFIX[framework]}").unlink()
    # what a writer killed before its rename leaves: a hidden temp file beside the target
    leftover = checkpoints / f".last.0badf00d.tmp{SUFFIX[framework]}"
    leftover.write_bytes(b"half a checkpoint")
    result = fit(framework, root, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    notes = [line for line in result.stderr.splitlines() if "--ckpt_path last" in line]
    assert len(notes) == 1 and f"epoch=0-step=2{SUFFIX[framework]}" in notes[0], result.stderr
    assert versions(root) == ["version_0"]  # continued in its own run, not a new one from scratch
    assert not leftover.exists()
    assert read_weights(str(checkpoints / f"last{SUFFIX[framework]}")).global_step == 4
    assert not list(checkpoints.glob("last-v*"))  # the one `last`, renewed, not a second beside it


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_fit_resume_last_with_no_run_is_one_error_line_not_a_fresh_start(framework, tmp_path):
    result = fit(framework, tmp_path, "--ckpt_path", "last")
    assert_one_line_error(result, "--ckpt_path last", str(tmp_path / "mnist" / framework))
    assert not any(tmp_path.iterdir())


# -- 8. evaluating `last` when there is none ---------------------------------------------------
@pytest.mark.parametrize("command", ["validate", "test"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_evaluating_last_with_no_run_is_one_error_line_and_creates_nothing(framework, command,
                                                                           tmp_path):
    result = run_cli(command, "--framework", framework, *short_run(epochs=None, eval_batch_size=200),
                     "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "last")
    assert_one_line_error(result, "--ckpt_path last", "no checkpoint")
    assert not any(tmp_path.iterdir())


# -- 7. one live fit per run folder ------------------------------------------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_second_fit_of_a_running_run_is_refused_and_a_killed_one_frees_it(trained, framework,
                                                                           tmp_path):
    root, run = copy_of(trained, framework, tmp_path)
    marker = tmp_path / "running"
    config = callback_config(tmp_path / "mark.yaml", framework, "MarkAtStep", step=3, path=marker)
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "fit", "--framework", framework, *TINY,
         "--trainer.max_epochs", "100000", "--config", str(config), "--ckpt_path", "last",
         "--trainer.default_root_dir", str(root)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(marker, first)
        # the running fit keeps its top-k as in place (its copied folder's best included), so
        # an older top-k file may go meanwhile: what the refused fit must not touch is the rest
        records = sorted(p.name for p in run.rglob("*") if not p.name.startswith("epoch="))
        second = fit(framework, root, "--trainer.max_epochs", "3", "--ckpt_path", "last")
        assert_one_line_error(second, str(run), "in use by another fit")
        assert first.poll() is None  # the owner ran on, untouched
        assert versions(root) == ["version_0"] and set(records) <= {p.name for p in run.rglob("*")}
    finally:
        first.kill()  # SIGKILL: no handler runs, the kernel drops its lock
        first.communicate()
    epochs = max(read_weights(str(p)).epoch for p in (run / "checkpoints").glob(f"[!.]*{SUFFIX[framework]}"))
    third = fit(framework, root, "--trainer.max_epochs", str(epochs + 2), "--ckpt_path", "last")
    assert third.returncode == 0, third.stderr[-3000:]
    assert versions(root) == ["version_0"]


# -- 9. nothing trained, or nothing to test ----------------------------------------------------
@pytest.mark.parametrize("option", ["--trainer.max_epochs", "--trainer.limit_train_batches"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_fit_that_trains_nothing_says_so_and_keeps_no_empty_run_folder(framework, option,
                                                                         tmp_path):
    result = fit(framework, tmp_path, option, "0")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "trained nothing" in lines[0] and f"{option[2:]} is 0" in lines[0]
    assert versions(tmp_path) == []


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_fit_without_a_best_checkpoint_says_it_ends_without_its_test(framework, tmp_path):
    result = fit(framework, tmp_path, "--trainer.limit_val_batches", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    last = tmp_path / "mnist" / framework / "version_0" / "checkpoints" / f"last{SUFFIX[framework]}"
    lines = [line for line in result.stderr.splitlines() if "without its test" in line]
    assert len(lines) == 1 and "val/acc" in lines[0] and str(last) in lines[0], result.stderr
    assert read_weights(str(last)).global_step == 2


# -- 4, 14. a signal outside training ----------------------------------------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_predict_stopped_by_sigterm_exits_143_with_one_line_and_keeps_the_previous_output(
        trained, framework, tmp_path):
    checkpoint = next((trained[framework] / "mnist" / framework).rglob(f"last{SUFFIX[framework]}"))
    output = tmp_path / "predictions.csv"
    output.write_text("the previous predictions\n")
    config = callback_config(tmp_path / "stop.yaml", framework, "SignalAtBatch", stage="predict",
                             batch=1)
    # a process of its own: the signal and the exit status are what is tested
    result = run_cli_process("predict", "--framework", framework, "--config", "configs/mnist.yaml",
                             "--config", str(config), "--ckpt_path", str(checkpoint),
                             "--data.eval_batch_size", "2", "--output", str(output), timeout=300)
    assert result.returncode == 143, result.stderr[-3000:]
    assert_one_line_error(result, "predict interrupted by SIGTERM", "unchanged")
    assert output.read_text() == "the previous predictions\n"
    assert "test[" not in result.stdout  # no row printed: it stopped, not finished


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sigterm_during_the_test_that_ends_fit_names_the_checkpoints_that_exist(framework,
                                                                                tmp_path):
    config = callback_config(tmp_path / "stop.yaml", framework, "SignalAtBatch", stage="test",
                             batch=0)
    result = fit(framework, tmp_path / "logs", "--config", str(config))
    assert result.returncode == 143, result.stderr[-3000:]
    assert_one_line_error(result, "the test that ends fit interrupted by SIGTERM",
                          "training had finished", "--ckpt_path")
    best = Path(result.stderr.strip().splitlines()[-1].rsplit(" ", 1)[-1])
    assert best.name == f"epoch=0-step=2{SUFFIX[framework]}" and read_weights(str(best)).global_step == 2
    assert (best.parent / f"last{SUFFIX[framework]}").is_file()


# -- 16. a line after a progress bar -----------------------------------------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_interrupt_line_starts_a_line_of_its_own_after_a_progress_bar(framework, tmp_path):
    """stdout and stderr into one pipe, as a terminal shows them: the bar (stdout) is redrawn
    with a carriage return and no newline, then the line (stderr) follows."""
    config = callback_config(tmp_path / "stop.yaml", framework, "SignalAtStep", step=1)
    args = [arg for arg in TINY if arg != "--trainer.enable_progress_bar"]
    args.remove("false")
    result = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "fit", "--framework", framework, *args,
         "--trainer.enable_progress_bar", "true", "--config", str(config),
         "--trainer.default_root_dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert result.returncode == 128 + signal.SIGTERM, result.stdout[-3000:]
    lines = result.stdout.split("\n")  # not splitlines: a carriage return does not end a line
    (line,) = [line for line in lines if "error: training interrupted" in line]
    assert line.startswith("error: training interrupted by SIGTERM"), repr(line[-300:])
