"""``python cli.py launch``: ``mlx.launch``'s code with an exit status that says how the ranks ended (``mlx.launch``
itself exits 0 when a rank fails). Ranks here are small Python programs (``-- python -c ...``), each a real
process over the ring backend's loopback; the trainer's own runs through it are in
``tests/reliability/test_distributed.py`` and ``tests/reliability/test_dead_rank.py``."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys

import pytest

from cnn.tools.launch import CLI_SCRIPT, MLX_LAUNCH, launcher_argv
from tests.cli_runs import run_cli
from tests.reliability.test_distributed import free_port_run, mlx_launch

pytest.importorskip("mlx.core")


def rank_program(body: str) -> list[str]:
    """``-- python -c body`` with ``rank`` from the launcher's ``MLX_RANK``."""
    return ["--", sys.executable, "-c", f"import os, signal, sys, time\nrank = int(os.environ['MLX_RANK'])\n{body}"]


def test_the_launch_exits_0_when_every_rank_does():
    result = mlx_launch(*rank_program("print('rank', rank, 'done')"), n=3, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(result.stdout.split("\n")[:3]) == ["rank 0 done", "rank 1 done", "rank 2 done"]


def test_a_rank_that_exits_non_zero_is_the_launchs_exit_status():
    result = mlx_launch(*rank_program("sys.exit(3 if rank == 1 else 0)"), timeout=120)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Node with rank 1 exited with code 3" in result.stderr  # mlx.launch's own line is kept


def test_a_killed_rank_gives_128_plus_its_signal_though_the_others_were_then_stopped_by_sigterm():
    """Rank 1 dies by SIGKILL; the launcher then ends rank 0 (SIGTERM): the status is the first failure's."""
    result = mlx_launch(*rank_program("os.kill(os.getpid(), 9) if rank == 1 else signal.pause()"), timeout=120)
    assert result.returncode == 128 + signal.SIGKILL, result.stderr[-3000:]
    assert "Node with rank 0 exited with code -15" in result.stderr


def test_a_ctrl_c_to_the_terminals_group_lets_the_ranks_finish_and_their_last_lines_and_status_come_through():
    """Ctrl-C reaches the launcher and every rank (one process group); the ranks take their time to stop (a
    checkpoint to write) and exit 130; the launcher relays what they print meanwhile and exits 130."""
    command = [sys.executable, str(CLI_SCRIPT), "launch", "-n", "2", "--backend", "ring", "--starting-port",
               str(free_port_run(2)), *rank_program(
                   # `ready` from inside the try: Ctrl-C once it is printed always finds the handler
                   "try:\n    print('ready', flush=True)\n    signal.pause()\n"
                   "except KeyboardInterrupt:\n    time.sleep(1)\n    print('rank', rank, 'saved', flush=True)\n"
                   "    sys.exit(130)")]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        ready = [process.stdout.readline() for _ in range(2)]  # both ranks are in their try
        assert ready == ["ready\n", "ready\n"], process.stderr.read()
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err[-3000:]
    assert sorted(out.split()) == sorted("rank 0 saved rank 1 saved".split()), out
    assert "Traceback" not in err


def test_a_launch_usage_error_is_one_error_line():
    result = run_cli("launch", "-n", "0", "fit")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: launch: argument --repeat-hosts/-n: invalid positive_number value: '0'"]


@pytest.mark.parametrize("argv, message", [
    (["-n", "2"], "name what every rank runs"),
    (["-n", "2", "fit", "--framework", "torch"], "it starts MLX ranks, not --framework torch")])
def test_a_launch_without_an_mlx_command_is_refused_in_one_line(argv, message):
    result = run_cli("launch", *argv)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: launch: {message}")


def test_a_trainer_command_runs_this_cli_on_mlx_with_this_python_and_its_options_stay_its_own():
    """``--env`` after ``fit`` belongs to fit, not to mlx.launch's option parser."""
    assert launcher_argv(["-n", "2", "fit", "--config", "c.yaml", "--env", "x"]) == [
        "-n", "2", "--python", sys.executable, "--", str(CLI_SCRIPT), "--framework", "mlx", "fit",
        "--config", "c.yaml", "--env", "x"]
    assert launcher_argv(["--python", "/p", "test"])[:3] == ["--python", "/p", "--"]
    assert launcher_argv(["-n", "2", "--", "prog", "fit"]) == ["-n", "2", "--", "prog", "fit"]


def test_mlx_launch_still_starts_ranks_where_the_launcher_records_their_exits():
    """What ``cnn.tools.launch`` reads of mlx's private launcher: a new mlx that renames it fails here."""
    launch = importlib.import_module(MLX_LAUNCH)
    assert isinstance(launch.RemoteProcess.exit_status, property) and callable(launch.run)
    for start in (launch.launch_ring, launch.launch_nccl, launch.launch_jaccl):
        assert "RemoteProcess" in start.__code__.co_names
    assert "run" in launch.launch_mpi.__code__.co_names
