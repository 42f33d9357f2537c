"""Two nodes on one machine, each engine started as a user starts a multi-node run, checked against one process.

torch: two ``cli.py fit`` processes, one a node (``--trainer.num_nodes 2 --trainer.devices 1``), with Lightning's
``MASTER_ADDR``/``MASTER_PORT``/``NODE_RANK`` variables (gloo on CPU). MLX: ``python cli.py launch --hostfile``
(``mlx.launch``'s code) naming two hosts, 127.0.0.1 twice (the ring backend over loopback). Each must leave one log
folder and one checkpoint set, and end with the weights and synced values of one process with the global batch
(``tests.reliability.test_distributed``'s reference and tolerances: dropout off, each rank a stride of the same
global order).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.cli_runs import ROOT, run_cli
from tests.reliability.test_distributed import (
    ONE_PROCESS,
    PER_RANK,
    TINY,
    assert_one_run,
    assert_same_training,
    free_port_run,
    mlx_initial,
    mlx_weights,
    torch_initial,
    torch_weights,
)

TIMEOUT = 300


def wait_all(processes: list[subprocess.Popen]) -> list[tuple[int, str]]:
    """``(returncode, stderr)`` of each process; on a timeout every process group is killed, none left waiting."""
    results = []
    try:
        for process in processes:
            _, err = process.communicate(timeout=TIMEOUT)
            results.append((process.returncode, err))
    except subprocess.TimeoutExpired:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"a node did not finish within {TIMEOUT} s") from None
    return results


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    # A script's own folder, not the cwd, heads sys.path: name this tree, not an installed copy.
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.slow  # three torch processes; the MLX twin runs by default
def test_torch_on_two_nodes_matches_one_process_with_the_global_batch(tmp_path):
    port = free_port_run(1)
    nodes = [start([sys.executable, str(ROOT / "cli.py"), "fit", *TINY, *PER_RANK,
                    "--trainer.default_root_dir", str(tmp_path / "nodes"), "--trainer.accelerator", "cpu",
                    "--trainer.strategy", "ddp", "--trainer.num_nodes", "2", "--trainer.devices", "1"],
                   {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(node),
                    "WORLD_SIZE": "2"})
             for node in (0, 1)]
    for node, (code, err) in enumerate(wait_all(nodes)):
        assert code == 0, f"node {node}: {err[-4000:]}"
        assert f"GLOBAL_RANK: {node}, MEMBER: {node + 1}/2" in err  # each node one rank of one world
    single = run_cli("fit", *TINY, *ONE_PROCESS, "--trainer.default_root_dir", str(tmp_path / "one"),
                     "--trainer.accelerator", "cpu")
    assert single.returncode == 0, single.stderr[-4000:]
    assert_same_training(assert_one_run(tmp_path / "nodes", "torch", ".ckpt"),
                         assert_one_run(tmp_path / "one", "torch", ".ckpt"), torch_weights, torch_initial, ".ckpt")


@pytest.mark.slow  # three MLX processes; test_distributed's ring run stays in the default suite
def test_mlx_on_two_hosts_of_a_hostfile_matches_one_process_with_the_global_batch(tmp_path):
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2))
    (launch,) = [start([sys.executable, str(ROOT / "cli.py"), "launch", "--hostfile", str(hostfile), "--backend",
                        "ring", "--starting-port", str(free_port_run(2)), "fit", *TINY, *PER_RANK,
                        "--trainer.default_root_dir", str(tmp_path / "nodes"), "--trainer.accelerator", "cpu"],
                       dict(os.environ))]
    ((code, err),) = wait_all([launch])
    assert code == 0, err[-4000:]  # python cli.py launch: non-zero when a rank failed
    single = run_cli("fit", "--framework", "mlx", *TINY, *ONE_PROCESS, "--trainer.default_root_dir",
                     str(tmp_path / "one"), "--trainer.accelerator", "cpu")
    assert single.returncode == 0, single.stderr[-4000:]
    assert_same_training(assert_one_run(tmp_path / "nodes", "mlx", ".safetensors"),
                         assert_one_run(tmp_path / "one", "mlx", ".safetensors"), mlx_weights, mlx_initial,
                         ".safetensors")
