"""Resuming ``fit``: a run stopped mid-epoch, or killed while it wrote a checkpoint, and resumed
with ``--ckpt_path last`` ends with the same weights, checkpoints and logged values, step for
step as TensorBoard shows them, as the run that went through in one go; bit for bit on CPU, in
both frameworks.

The stop is a real SIGTERM (``tests.signal_at_step``) after a given step, so nothing else about
the run changes (``--trainer.max_steps`` would also shorten the cosine lr schedule, which is
sized from ``estimated_stepping_batches``); the kill a real SIGKILL in a given checkpoint write.
"""

from __future__ import annotations

import signal
import urllib.parse
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from cnn import schema
from cnn.data.datamodule import TensorBatches
from cnn.data.pipeline import PreparedData
from cnn.tools.events import read_scalars, run_dirs
from cnn.weights import read_weights
from tests.cli_runs import run_cli, run_cli_process, short_run
from tests.servers import get_json, poll, tensorboard_server

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
KILL = """\
    - class_path: tests.signal_at_step.{prefix}KillAtSave
      init_args: {{save: {save}}}
"""


def fit(framework: str, root: Path, config: Path, *args: str):
    return run_cli("fit", "--framework", framework, *RUN, "--config", str(config),
                   "--trainer.default_root_dir", str(root), *args)


def series(run: Path) -> dict[str, list[tuple[int, float]]]:
    return {tag: sorted((s.step, s.value) for s in points)
            for tag, points in read_scalars(run).items()}


def assert_same_run(run: Path, reference: Path, ext: str) -> None:
    """``run`` ends as ``reference``: the same checkpoints (names, epoch, step, weights bit for
    bit) and every value logged (train loss per step, epoch values, test metrics of the best
    checkpoint) at the same step, as TensorBoard shows them."""
    names = sorted(p.name for p in (reference / "checkpoints").glob("*" + ext))
    assert names == [f"epoch=0-step=4{ext}", f"epoch=1-step=8{ext}", f"last{ext}"]
    assert sorted(p.name for p in (run / "checkpoints").glob("*" + ext)) == names
    for name in names:
        ours, theirs = (read_weights(str(r / "checkpoints" / name)) for r in (run, reference))
        assert (ours.epoch, ours.global_step) == (theirs.epoch, theirs.global_step), name
        for key, value in theirs.params.items():
            np.testing.assert_array_equal(ours.params[key], value, err_msg=f"{name}: {key}")
    assert series(run) == series(reference)


FRAMEWORKS = [pytest.param("torch", marks=pytest.mark.slow),  # torch processes: 35-85 s on 2 cores
              "mlx"]


@pytest.fixture(scope="module")
def in_one_go(tmp_path_factory) -> Callable[[str], Path]:
    """framework -> the run folder of the fit that went through in one go (made on first use)."""
    made: dict[str, Path] = {}

    def run(framework: str) -> Path:
        if framework not in made:
            root = tmp_path_factory.mktemp(f"whole-{framework}")
            (root / "plain.yaml").write_text(CHECKPOINTS)
            whole = fit(framework, root, root / "plain.yaml")
            assert whole.returncode == 0, whole.stderr[-3000:]
            (made[framework],) = run_dirs(root)
        return made[framework]
    return run


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_fit_stopped_mid_epoch_and_resumed_from_last_equals_fit_in_one_go(framework, in_one_go, tmp_path):
    plain, stopping = tmp_path / "plain.yaml", tmp_path / "stopping.yaml"
    plain.write_text(CHECKPOINTS)
    prefix = "Torch" if framework == "torch" else "Mlx"
    # step 5 = after the 2nd batch of epoch 1; the lr schedule, dropout and data order go on
    stopping.write_text(CHECKPOINTS + STOP.format(prefix=prefix, step=5,
                                                  signum=int(signal.SIGTERM)))

    stopped = fit(framework, tmp_path / "resumed", stopping)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    resumed = fit(framework, tmp_path / "resumed", plain, "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    (run,) = run_dirs(tmp_path / "resumed")  # resumed in its own version_0, not a new one
    assert_same_run(run, in_one_go(framework), EXTENSION[framework])


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory) -> Callable[[str, int], tuple[Path, str]]:
    """(framework, save) -> a fit SIGKILLed in its ``save``-th checkpoint write, then resumed
    with ``--ckpt_path last``: its run folder and what the resume printed on stderr (made on
    first use)."""
    made: dict[tuple[str, int], tuple[Path, str]] = {}

    def run(framework: str, save: int) -> tuple[Path, str]:
        if (framework, save) not in made:
            root = tmp_path_factory.mktemp(f"killed-{framework}-{save}")
            plain, killing = root / "plain.yaml", root / "killing.yaml"
            plain.write_text(CHECKPOINTS)
            prefix = "Torch" if framework == "torch" else "Mlx"
            killing.write_text(CHECKPOINTS + KILL.format(prefix=prefix, save=save))
            killed = run_cli_process("fit", "--framework", framework, *RUN, "--config", str(killing),
                                     "--trainer.default_root_dir", str(root / "logs"))
            assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
            resumed = fit(framework, root / "logs", plain, "--ckpt_path", "last")
            assert resumed.returncode == 0, resumed.stderr[-3000:]
            (folder,) = run_dirs(root / "logs")
            made[framework, save] = folder, resumed.stderr
        return made[framework, save]
    return run


# The checkpoints written at each epoch's end, in order: epoch 0's top-k and last (1, 2), then
# epoch 1's (3, 4).
@pytest.mark.parametrize("save, resumed_from", [
    (4, "epoch=1-step=8"),  # epoch 1's whole, only its last lost: no epoch value may be lost
    (3, "last"),            # epoch 1's first lost: epoch 1 is trained again, its points written twice
])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_fit_killed_writing_an_epoch_end_checkpoint_and_resumed_equals_fit_in_one_go(
        framework, save, resumed_from, in_one_go, killed_and_resumed):
    run, stderr = killed_and_resumed(framework, save)
    ext = EXTENSION[framework]
    note = [line for line in stderr.splitlines() if "--ckpt_path last" in line]
    assert (note == []) if resumed_from == "last" else (f"newest checkpoint {run}/checkpoints/{resumed_from}{ext}"
                                                        in note[0])
    assert_same_run(run, in_one_go(framework), ext)


def test_a_real_tensorboard_server_shows_an_epoch_trained_again_once(in_one_go, killed_and_resumed):
    """TensorBoard's Python loader takes a run's first session start for its beginning and a
    later one for a restart: a fresh fit's mark at step 0 makes the resume's count."""
    run, _ = killed_and_resumed("mlx", 3)
    reference = series(in_one_go("mlx"))
    with tensorboard_server(run.parent) as base:
        query = urllib.parse.urlencode({"tag": schema.TRAIN_LOSS, "run": run.name})
        rows = poll(lambda: get_json(f"{base}/data/plugin/scalars/scalars?{query}"),
                    lambda got: bool(got), seconds=60, empty=[])
    assert [(step, value) for _, step, value in rows] == reference[schema.TRAIN_LOSS]


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
