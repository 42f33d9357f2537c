"""A ``monitor`` that is not logged yet, or never will be, through the real CLI on both frameworks.

As Lightning: a monitored metric not logged yet (training stopped before any validation) is a warning, and ``last``
is written. A ``monitor`` the model never logs (a misspelt name) ends ``fit`` in one ``error:`` line listing the
metrics it logs, at the first validation (the sanity check's: before any training step), and the steps trained
before that validation are kept in ``last``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_runs import run_cli, run_cli_process, short_run

FRAMEWORKS = ("torch", "mlx")
SUFFIX = {"torch": ".ckpt", "mlx": ".safetensors"}
TINY = short_run(train_batches=3)


def fit(framework: str, logs: Path, *args: str, process: bool = False):
    """``fit`` in this process, or with ``process`` in a fresh one: where what is tested is
    process-wide state (Lightning warns once a process; a class's short name is looked up among
    the subclasses a process has imported)."""
    run = run_cli_process if process else run_cli
    return run("fit", "--framework", framework, *TINY, "--trainer.default_root_dir", str(logs), *args)


def callbacks_config(path: Path, callback: str, monitor: str) -> str:
    path.write_text(f"trainer:\n  callbacks:\n    - class_path: {callback}\n      init_args:\n"
                    f"        monitor: {monitor}\n        mode: max\n")
    return str(path)


def checkpoints(logs: Path, framework: str) -> list[str]:
    return sorted(p.name for p in logs.glob(f"mnist/{framework}/version_*/checkpoints/*{SUFFIX[framework]}"))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_fit_that_stops_before_validation_warns_and_keeps_last(framework, tmp_path):
    result = fit(framework, tmp_path, "--trainer.max_steps", "1", process=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "could not find the monitored key" in result.stderr  # Lightning's warning
    assert f"last{SUFFIX[framework]}" in checkpoints(tmp_path, framework)


# One check (cnn.monitors) for every monitoring callback: torch's EarlyStopping case, a torch
# process more, runs with the slow ones.
@pytest.mark.parametrize("framework, callback", [
    ("torch", "ModelCheckpoint"), ("mlx", "ModelCheckpoint"), ("mlx", "EarlyStopping"),
    pytest.param("torch", "EarlyStopping", marks=pytest.mark.slow)])
def test_a_misspelt_monitor_ends_fit_in_one_line_at_the_sanity_check_before_any_step(framework, callback, tmp_path):
    config = callbacks_config(tmp_path / "monitor.yaml", callback, "val/acx")
    result = fit(framework, tmp_path / "logs", "--config", config, process=True)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {callback}(monitor='val/acx') names a metric the model does not log; "
                           "it logs: epoch, step, train/acc, train/loss, val/acc, val/loss"), last
    assert checkpoints(tmp_path / "logs", framework) == []  # nothing was trained, nothing is left


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_misspelt_monitor_found_after_training_keeps_the_trained_steps_in_last(framework, tmp_path):
    config = callbacks_config(tmp_path / "monitor.yaml", "EarlyStopping", "val/acx")
    result = fit(framework, tmp_path / "logs", "--config", config, "--trainer.num_sanity_val_steps", "0")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: EarlyStopping(monitor='val/acx') names a metric the model does not log") and \
        last.endswith("the 3 steps trained are saved in the run's `last` checkpoint"), last
    assert f"last{SUFFIX[framework]}" in checkpoints(tmp_path / "logs", framework)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_callback_lightning_refuses_at_run_time_ends_in_one_line_on_both_sides(framework, tmp_path):
    """Where Lightning raises ``MisconfigurationException`` (here: ``LearningRateMonitor`` without a logger), the
    MLX mirror raises ``ConfigError``: one line, as the torch side's."""
    config = tmp_path / "lr.yaml"
    config.write_text("trainer:\n  logger: false\n  callbacks:\n    - class_path: LearningRateMonitor\n")
    result = fit(framework, tmp_path / "logs", "--config", str(config))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(
        "Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger.")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_run_a_failing_callback_stops_keeps_its_newest_state_in_last(framework, tmp_path):
    config = tmp_path / "fail.yaml"
    config.write_text("trainer:\n  callbacks:\n"
                      f"    - class_path: tests.fail_at_step.{framework.capitalize()}FailAtStep\n"
                      "      init_args: {step: 2}\n")
    result = fit(framework, tmp_path / "logs", "--config", str(config))
    assert result.returncode != 0
    assert "injected failure at step 2" in result.stderr
    (last,) = (tmp_path / "logs").glob(f"mnist/{framework}/version_0/checkpoints/last{SUFFIX[framework]}")
    assert saved_step(framework, last) == 2


def saved_step(framework: str, path: Path) -> int:
    """The ``global_step`` a checkpoint holds, read as its side reads it."""
    if framework == "torch":
        import torch

        return torch.load(path, weights_only=True)["global_step"]
    from cnn.mx.checkpoint import load_checkpoint

    return load_checkpoint(str(path))["global_step"]
