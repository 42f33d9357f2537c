"""The MLX mirrors of Lightning's StochasticWeightAveraging, DeviceStatsMonitor, CSVLogger and
RichProgressBar, on a small MLP that knows nothing of this project's CNN."""

from __future__ import annotations

import csv
import importlib.util
import io

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning import (
    Callback,
    CSVLogger,
    DeviceStatsMonitor,
    RichProgressBar,
    StochasticWeightAveraging,
    Trainer,
)

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from tests.boring import Loader
from tests.cli_runs import run_cli
from tests.mx.lightning.test_mx_lightning_generic import MLP

RICH = importlib.util.find_spec("rich") is not None
QUIET = {"enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
         "num_sanity_val_steps": 0}


def data(n: int = 64, seed: int = 0) -> Loader:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    return Loader(x, (x[:, 0] > 0).astype(np.int64), 16)


class Recorder(Callback):
    """The trainable weights at each epoch's start, and the learning rate of each epoch."""

    def __init__(self):
        self.weights, self.lrs = [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.weights.append({k: np.array(v) for k, v in tree_flatten(pl_module.trainable_parameters())})

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.lrs.append(float(trainer.optimizers[0].learning_rate))


def test_swa_anneals_to_its_rate_and_ends_with_the_mean_of_the_weights_at_each_swa_epochs_start():
    model, recorder = MLP(), Recorder()
    swa = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2, annealing_epochs=1)
    Trainer(max_epochs=3, logger=False, callbacks=[swa, recorder], **QUIET).fit(model, data(), data(seed=1))
    # SWA from the second epoch (index 1): the rate of that epoch is the one it found, then swa_lrs
    assert recorder.lrs == pytest.approx([0.3, 0.3, 0.05])
    final = dict(tree_flatten(model.trainable_parameters()))
    for name, value in final.items():
        expected = (recorder.weights[1][name] + recorder.weights[2][name]) / 2
        np.testing.assert_allclose(np.array(value), expected, rtol=1e-6, atol=1e-7)


def test_swa_refuses_a_start_that_is_no_epoch():
    with pytest.raises(ValueError, match="swa_epoch_start"):
        StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=0)


def test_device_stats_monitor_logs_mlx_memory_counters_with_lightnings_names(tmp_path):
    logger = CSVLogger(tmp_path, name="run")
    Trainer(max_epochs=1, logger=logger, log_every_n_steps=1, callbacks=[DeviceStatsMonitor()],
            **QUIET).fit(MLP(), data(), data(seed=1))
    with open(tmp_path / "run" / "version_0" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    values = [float(r["DeviceStatsMonitor.on_train_batch_end/active_memory_bytes"]) for r in rows
              if r.get("DeviceStatsMonitor.on_train_batch_end/active_memory_bytes")]
    assert len(values) == 4 and all(v > 0 for v in values)  # 64 samples in batches of 16, every step


def test_csv_logger_numbers_versions_and_keeps_every_metric_as_a_sorted_column(tmp_path):
    for version in (0, 1):
        logger = CSVLogger(tmp_path, name="exp")
        logger.log_hyperparams({"lr": 0.1})
        logger.log_metrics({"b": 1.0}, step=0)
        logger.log_metrics({"a": 2.0, "b": 3.0}, step=1)  # a new name: the header widens
        logger.finalize("success")
        assert logger.log_dir == str(tmp_path / "exp" / f"version_{version}")
    text = (tmp_path / "exp" / "version_1" / "metrics.csv").read_text().splitlines()
    assert text == ["a,b,step", ",1.0,0", "2.0,3.0,1"]
    assert (tmp_path / "exp" / "version_1" / "hparams.yaml").read_text() == "lr: 0.1\n"


@pytest.mark.skipif(RICH, reason="rich is installed: the missing-package line cannot be seen")
@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_rich_progress_bar_without_rich_is_one_error_line_on_both_sides(framework):
    result = run_cli("--framework", framework, "fit", "--config", "configs/mnist.yaml",
                     "--trainer.callbacks+=lightning.pytorch.callbacks.RichProgressBar")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: RichProgressBar needs the rich package, which is not installed: pip install rich "
        "(or the project's [rich] extra)")


@pytest.mark.skipif(not RICH, reason="rich is not installed (the project's optional [rich] extra)")
def test_rich_progress_bar_draws_the_training_bars_with_rich():
    out = io.StringIO()
    bar = RichProgressBar(refresh_rate=1, console_kwargs={"file": out, "force_terminal": False, "width": 120})
    Trainer(max_epochs=1, logger=False, callbacks=[bar], enable_checkpointing=False,
            enable_model_summary=False).fit(MLP(), data(), data(seed=1))
    assert "Epoch 0" in out.getvalue()


def test_a_whole_float_batch_limit_is_a_count_as_in_lightning():
    # torch's saved config.yaml holds `limit_train_batches: 2.0` for `--trainer.limit_train_batches 2`
    class Count(Callback):
        batches = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            Count.batches += 1

    Trainer(max_epochs=1, logger=False, limit_train_batches=2.0, limit_val_batches=0, callbacks=[Count()],
            **QUIET).fit(MLP(), data(), data(seed=1))
    assert Count.batches == 2


@pytest.mark.skipif(importlib.util.find_spec("psutil") is not None, reason="psutil is installed")
def test_lightnings_device_stats_monitor_without_psutil_on_the_cpu_is_one_error_line():
    result = run_cli("fit", "--config", "configs/mnist.yaml", "--trainer.accelerator", "cpu",
                     "--trainer.callbacks+=lightning.pytorch.callbacks.DeviceStatsMonitor")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: DeviceStatsMonitor needs the psutil package")


def test_tensorboard_loggers_experiment_writes_scalars_histograms_images_and_text_tensorboard_reads(tmp_path):
    from cnn.mx.lightning.loggers import TensorBoardLogger

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(str(tmp_path), name="tb")
    writer = logger.experiment
    writer.add_scalar("loss", mx.array(0.25), 3)
    writer.add_histogram("weights", mx.array(np.arange(100, dtype=np.float32)), 3)
    writer.add_image("picture", np.zeros((3, 4, 5), dtype=np.float32), 3)  # CHW floats in [0, 1], as torch's
    writer.add_text("note", "hello", 3)
    logger.finalize("success")

    events = EventAccumulator(logger.log_dir, size_guidance={"tensors": 0})
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(3, 0.25)]
    (histogram,) = events.Histograms("weights")
    assert (histogram.step, histogram.histogram_value.num, histogram.histogram_value.max) == (3, 100, 99.0)
    (image,) = events.Images("picture")
    assert (image.step, image.width, image.height) == (3, 5, 4)
    (text,) = events.Tensors("note/text_summary")
    assert text.tensor_proto.string_val == [b"hello"]


@pytest.mark.parametrize("framework", ["lightning", "mirror"])
def test_tensorboard_loggers_purge_step_marks_a_restart_in_its_first_file_only_as_lightnings(framework, tmp_path):
    """Lightning passes a TensorBoardLogger's other arguments to torch's SummaryWriter; ``purge_step``
    begins its first events file with a ``SessionLog.START`` at that step, and a writer made again
    after ``finalize`` (a test after fit) writes the same run's next file without one."""
    if framework == "lightning":
        from lightning.pytorch.loggers import TensorBoardLogger
    else:
        from cnn.mx.lightning.loggers import TensorBoardLogger

    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    logger = TensorBoardLogger(str(tmp_path), name="tb", version=0, purge_step=4)
    logger.log_metrics({"loss": 1.0}, step=4)
    logger.finalize("success")
    logger.log_metrics({"loss": 2.0}, step=9)
    logger.finalize("success")

    files = sorted((tmp_path / "tb" / "version_0").glob("events.out.tfevents.*"))
    starts = [[e.step for e in LegacyEventFileLoader(str(f)).Load() if e.HasField("session_log")]
              for f in files]
    assert starts == [[4], []]
