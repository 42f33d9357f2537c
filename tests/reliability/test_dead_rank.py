"""A rank of a two-process run killed (SIGKILL) mid-fit: the survivor ends with one ``error:`` line
naming the dead rank and how to resume, and a non-zero exit; ``--ckpt_path last`` then resumes.

torch: Lightning's ``ddp`` on CPU (gloo); rank 0 is the command the user started, rank 1 its child.
MLX: ``python cli.py launch -n 2 --backend ring fit ...`` (``mlx.launch``'s code, whose own command
would exit 0), which exits with the first failed rank's status: 137 for the rank killed; the
survivor's own status is in ``mlx.launch``'s ``[WARN] Node with rank R exited with code C`` line.

2 epochs of 4 batches; a checkpoint is written after epoch 0 (step 4), the kill comes at the end of
step 6. The survivor's step 7 fails in its gradient average, so its weights are no step's and
nothing more is saved: ``last`` is the step-4 checkpoint on both frameworks, always (on MLX it was
once the survivor's half-done step 7 labelled step 6, when ``mlx.launch``'s SIGTERM came first).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cnn.weights import read_weights
from tests.cli_runs import ROOT
from tests.reliability.test_distributed import mlx_launch

RUN = ["--config", "configs/mnist.yaml", "--trainer.max_epochs", "2",
       "--trainer.limit_train_batches", "4", "--trainer.limit_val_batches", "2",
       "--trainer.limit_test_batches", "2", "--data.batch_size", "32",
       "--data.eval_batch_size", "200", "--data.val_fraction", "0.01",
       "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu"]
STEPS, KILL_AT = 8, 6
SUFFIX = {"torch": ".ckpt", "mlx": ".safetensors"}
PREFIX = {"torch": "Torch", "mlx": "Mlx"}


def kill_config(path: Path, framework: str, rank: int) -> Path:
    path.write_text("trainer:\n  callbacks:\n    - class_path: tests.signal_at_step."
                    f"{PREFIX[framework]}SignalAtStep\n      init_args: {{step: {KILL_AT}, "
                    f"signum: {int(signal.SIGKILL)}, rank: {rank}}}\n")
    return path


def fit_two_ranks(framework: str, root: Path, *args: str) -> subprocess.CompletedProcess:
    """``fit`` on two CPU processes as the README starts them (for MLX ``python cli.py launch``)."""
    argv = ["fit", "--framework", framework, *RUN, "--trainer.default_root_dir", str(root), *args]
    if framework == "mlx":
        return mlx_launch(*argv, timeout=300)
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *argv, "--trainer.strategy", "ddp",
                           "--trainer.devices", "2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def survivor_status(framework: str, dead: int, result: subprocess.CompletedProcess) -> int | None:
    """The survivor's exit status: for MLX from the launcher's line about it; for torch the
    command's, unless the dead rank was rank 0 (the command itself: -9), whose child prints its
    line to the same stderr but has no status the test can read."""
    if framework == "mlx":
        line = f"Node with rank {1 - dead} exited with code "
        (code,) = [text.split(line)[1].split()[0] for text in result.stderr.splitlines() if line in text]
        return int(code)
    return None if dead == 0 else result.returncode


@pytest.mark.parametrize("framework, dead", [
    pytest.param("torch", 1, marks=pytest.mark.slow),  # two torch runs of two processes: 2-3 min
    pytest.param("torch", 0, marks=pytest.mark.slow),
    pytest.param("mlx", 1, marks=pytest.mark.slow), pytest.param("mlx", 0, marks=pytest.mark.slow)])
def test_a_killed_rank_leaves_the_survivor_one_line_and_a_failure_then_last_resumes(framework, dead,
                                                                                    tmp_path):
    root = tmp_path / "logs"
    killed = fit_two_ranks(framework, root, "--config", str(kill_config(tmp_path / "kill.yaml",
                                                                         framework, dead)))
    # rank 0 of torch sees how its child ended; the others know only that their peer is gone
    how = " (killed by SIGKILL)" if (framework, dead) == ("torch", 1) else ""
    errors = [line for line in killed.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: rank {dead} of 2 stopped{how}, so rank {1 - dead} stopped too; "
                      "resume with --ckpt_path last"], killed.stderr[-3000:]
    assert "Traceback" not in killed.stderr
    # a SIGTERM from mlx.launch after the death is no request to save, and is not said to be one
    assert "Received SIGTERM" not in killed.stderr, killed.stderr[-3000:]
    status = survivor_status(framework, dead, killed)
    if status is not None:
        assert status == 1, killed.stderr[-3000:]
    if framework == "torch" and dead == 0:
        assert killed.returncode == -signal.SIGKILL  # the user's command was the rank killed
    if framework == "mlx":
        assert killed.returncode == 128 + signal.SIGKILL  # the launch's status: the killed rank's
    run = root / "mnist" / framework / "version_0"
    assert read_weights(str(run / "checkpoints" / f"last{SUFFIX[framework]}")).global_step == 4

    resumed = fit_two_ranks(framework, root, "--ckpt_path", "last")
    assert resumed.returncode == 0 and "error:" not in resumed.stderr, resumed.stderr[-3000:]
    assert sorted(p.name for p in (root / "mnist" / framework).iterdir()) == ["version_0"]
    assert read_weights(str(run / "checkpoints" / f"last{SUFFIX[framework]}")).global_step == STEPS


def test_lightnings_watcher_names_the_rank_it_saw_die_instead_of_killing_rank_zero_silently():
    """``cnn.pt.lightning_internals.report_dead_ranks`` on Lightning's watcher (what rank 0 runs
    beside training in ``ddp``): a started rank killed, another still running; the report gets the
    dead one's local rank and status, the live one is stopped, and the main process (a stand-in
    here, which Lightning's own watcher would SIGKILL) lives on."""
    from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    from cnn.errors import exit_description
    from cnn.pt.lightning_internals import report_dead_ranks

    main, alive = (subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])  # until killed
                   for _ in range(2))
    dead = subprocess.Popen([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"])
    dead.wait(timeout=30)
    reports = []
    report_dead_ranks(lambda rank, status: reports.append((rank, exit_description(status))))
    try:
        # started as Lightning's launcher starts it (a thread), without its 5 s between looks
        observer = _ChildProcessObserver(main_pid=main.pid, child_processes=[alive, dead], sleep_period=0)
        observer.start()
        observer.join(timeout=60)
        assert not observer.is_alive()  # it saw the dead rank and stopped watching
        assert reports == [(2, "killed by SIGKILL")]
        assert alive.wait(timeout=30) == -signal.SIGKILL
        assert main.poll() is None
    finally:
        for process in (main, alive):
            process.kill()
            process.wait()


@pytest.mark.slow  # two MLX processes
def test_a_sigterm_to_one_mlx_rank_stops_both_at_one_batch_said_once_by_rank_zero(tmp_path):
    """Rank 1 alone gets SIGTERM at step 6: the ranks agree at the next step, both write nothing but rank zero's
    ``last`` and end with 143, and the stop is said once, by rank zero, as what it is."""
    config = tmp_path / "term.yaml"
    config.write_text("trainer:\n  callbacks:\n    - class_path: tests.signal_at_step.MlxSignalAtStep\n"
                      f"      init_args: {{step: {KILL_AT}, signum: {int(signal.SIGTERM)}, rank: 1}}\n")
    root = tmp_path / "logs"
    result = fit_two_ranks("mlx", root, "--config", str(config))
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-3000:]
    stops = [line for line in result.stderr.splitlines() if "stop after the current batch" in line]
    assert stops == ["A rank received a signal: all 2 ranks stop after the current batch (saving a resumable "
                     "'last' checkpoint)"], result.stderr[-3000:]
    last = root / "mnist" / "mlx" / "version_0" / "checkpoints" / "last.safetensors"
    assert read_weights(str(last)).global_step == KILL_AT + 1  # the step in which they agreed
