"""Resuming ``fit``: a run stopped mid-epoch and resumed with ``--ckpt_path last`` ends with the
same weights, checkpoints and logged values, step for step, as the run that went through in one
go; bit for bit on CPU, in both frameworks.

The stop is a real SIGTERM (``tests.signal_at_step``) after a given step, so nothing else about
the run changes (``--trainer.max_steps`` would also shorten the cosine lr schedule, which is
sized from ``estimated_stepping_batches``).
"""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from cnn.data.datamodule import TensorBatches
from cnn.data.pipeline import PreparedData
from cnn.tools.events import read_scalars, run_dirs
from cnn.weights import read_weights
from tests.cli_runs import run_cli, short_run

# 2 epochs of 4 batches; every step logged; train-accuracy probe and validation kept small.
RUN = [*short_run(epochs=2, train_batches=4, val_batches=2, test_batches=2, log_every=1, eval_batch_size=200,
                 val_fraction=0.01)]
EXTENSION = {"torch": ".ckpt", "mlx": ".safetensors"}
# Every epoch's checkpoint kept, so there are more files to compare.
CHECKPOINTS = """\
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {monitor: val/acc, mode: max, save_top_k: -1, save_last: true,
                  filename: "epoch={epoch}-step={step}", auto_insert_metric_name: false}
"""
STOP = """\
    - class_path: tests.signal_at_step.{prefix}SignalAtStep
      init_args: {{step: {step}, signum: {signum}}}
"""


def fit(framework: str, root: Path, config: Path, *args: str):
    return run_cli("fit", "--framework", framework, *RUN, "--config", str(config),
                   "--trainer.default_root_dir", str(root), *args)


def series(run: Path) -> dict[str, list[tuple[int, float]]]:
    return {tag: sorted((s.step, s.value) for s in points)
            for tag, points in read_scalars(run).items()}


@pytest.mark.parametrize("framework", [
    pytest.param("torch", marks=pytest.mark.slow),  # three torch processes: 35-85 s on 2 cores
    "mlx"])
def test_fit_stopped_mid_epoch_and_resumed_from_last_equals_fit_in_one_go(framework, tmp_path):
    plain, stopping = tmp_path / "plain.yaml", tmp_path / "stopping.yaml"
    plain.write_text(CHECKPOINTS)
    prefix = "Torch" if framework == "torch" else "Mlx"
    # step 5 = after the 2nd batch of epoch 1; the lr schedule, dropout and data order go on
    stopping.write_text(CHECKPOINTS + STOP.format(prefix=prefix, step=5,
                                                  signum=int(signal.SIGTERM)))

    whole = fit(framework, tmp_path / "whole", plain)
    assert whole.returncode == 0, whole.stderr[-3000:]
    stopped = fit(framework, tmp_path / "resumed", stopping)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    resumed = fit(framework, tmp_path / "resumed", plain, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    (reference,) = run_dirs(tmp_path / "whole")
    (run,) = run_dirs(tmp_path / "resumed")  # resumed in its own version_0, not a new one
    ext = EXTENSION[framework]
    names = sorted(p.name for p in (reference / "checkpoints").glob("*" + ext))
    assert names == [f"epoch=0-step=4{ext}", f"epoch=1-step=8{ext}", f"last{ext}"]
    for name in names:
        ours, theirs = (read_weights(str(r / "checkpoints" / name)) for r in (run, reference))
        assert (ours.epoch, ours.global_step) == (theirs.epoch, theirs.global_step), name
        for key, value in theirs.params.items():
            np.testing.assert_array_equal(ours.params[key], value, err_msg=f"{name}: {key}")
    # Every value logged (train loss per step, epoch values, test metrics of the best
    # checkpoint) at the same step.
    assert series(run) == series(reference)


def test_a_stream_restored_at_an_epoch_end_starts_the_next_epoch_from_its_first_batch():
    """A checkpoint written at the end of epoch 0 holds that epoch's position (all 4 batches,
    with limit_train_batches); resuming must not skip 4 batches of epoch 1."""
    data = PreparedData("mnist", val_fraction=0.01)

    def stream() -> TensorBatches:
        return TensorBatches(data.batches("train", 32, "NHWC", shuffle=True), lambda b: b)

    epoch_one = stream()
    epoch_one.set_epoch(1)
    expected = [labels for _, labels in list(epoch_one)[:6]]

    restored = stream()
    restored.load_state_dict({"epoch": 0, "batches_done": 4})
    restored.set_epoch(1)
    restored_labels = [labels for _, labels in list(restored)[:len(expected)]]
    assert len(restored_labels) == len(expected) == 6
    for got, want in zip(restored_labels, expected):
        np.testing.assert_array_equal(got, want)

    mid_epoch = stream()
    mid_epoch.load_state_dict({"epoch": 1, "batches_done": 2})
    mid_epoch.set_epoch(1)
    np.testing.assert_array_equal(next(iter(mid_epoch))[1], expected[2])
