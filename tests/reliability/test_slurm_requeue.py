"""SLURM's requeue signal on the MLX side, sent for real (``tests.signal_at_step``), as Lightning's signal connector
handles it: under a SLURM batch task SIGUSR1 stops ``fit`` at the next batch boundary with ``hpc_ckpt_1`` in
``default_root_dir`` and a resumable ``last``, then asks ``scontrol`` to requeue the job; where there is no
``scontrol`` it says so in one line, and the run exits non-zero (128 + SIGUSR1) after the checkpoint."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.cli_runs import run_cli_process, short_run

RUN = short_run(train_batches=6)
STOP_AT_STEP_2 = f"""\
trainer:
  callbacks:
    - class_path: tests.signal_at_step.MlxSignalAtStep
      init_args: {{step: 2, signum: {int(signal.SIGUSR1)}}}
"""
SLURM_TASK = {"SLURM_NTASKS": "1", "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train"}


def saved(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """The weights and the global step of an MLX checkpoint, read as the trainer reads it."""
    from cnn.mx.checkpoint import load_checkpoint

    from mlx.utils import tree_flatten

    checkpoint = load_checkpoint(str(path))
    return {k: np.array(v) for k, v in tree_flatten(checkpoint["state_dict"])}, checkpoint["global_step"]


@pytest.mark.skipif(shutil.which("scontrol") is not None, reason="a real scontrol would requeue a real job")
def test_sigusr1_under_slurm_writes_an_hpc_checkpoint_and_last_then_says_scontrol_is_missing(tmp_path):
    config = tmp_path / "stop.yaml"
    config.write_text(STOP_AT_STEP_2)
    # a process of its own: the signal, the exit status and SLURM's environment are what is tested
    result = run_cli_process("fit", "--framework", "mlx", *RUN, "--config", str(config),
                             "--trainer.default_root_dir", str(tmp_path / "logs"), env={**os.environ, **SLURM_TASK})
    assert result.returncode == 128 + signal.SIGUSR1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "warning: scontrol not found, so SLURM job 4242 was not requeued; its state is in " \
           f"{tmp_path / 'logs' / 'hpc_ckpt_1.safetensors'}" in result.stderr
    (last,) = (tmp_path / "logs").glob("mnist/mlx/version_0/checkpoints/last.safetensors")
    assert result.stderr.strip().splitlines()[-1] == \
        f"error: training interrupted by SIGUSR1; resume with --ckpt_path {last}"
    hpc_weights, hpc_step = saved(tmp_path / "logs" / "hpc_ckpt_1.safetensors")
    last_weights, last_step = saved(last)
    assert hpc_step == last_step == 2  # the batch boundary after the step that sent the signal
    assert hpc_weights.keys() == last_weights.keys() and hpc_weights
    for name in hpc_weights:
        np.testing.assert_array_equal(hpc_weights[name], last_weights[name], err_msg=name)


def test_sigusr1_outside_slurm_is_not_taken_over(tmp_path):
    """Lightning handles SIGUSR1 only for a SLURM batch task: elsewhere it keeps its default action."""
    config = tmp_path / "stop.yaml"
    config.write_text(STOP_AT_STEP_2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    result = run_cli_process("fit", "--framework", "mlx", *RUN, "--config", str(config),
                             "--trainer.default_root_dir", str(tmp_path / "logs"), env=env)
    assert result.returncode == -signal.SIGUSR1
    assert not list((tmp_path / "logs").glob("hpc_ckpt_*"))
