"""The MLX Trainer's debugging, accumulation, precision and time flags, each against what Lightning itself does
with the same flag on the same regression module and data (``tests.mx.test_mx_trainer``'s ``MxReg`` and its torch
twin): the same steps logged with the same values, the same files written, the same final weights."""

from __future__ import annotations

import os
from pathlib import Path

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from cnn.mx.lightning.callbacks.gradient_accumulation_scheduler import GradientAccumulationScheduler
from cnn.mx.lightning.callbacks.timer import Timer
from cnn.mx.lightning.loggers import TensorBoardLogger
from cnn.mx.lightning.plugins.precision import LossScaler, Precision
from cnn.mx.lightning.trainer import Trainer

import mlx.core as mx
import numpy as np
import pytest

from cnn.config_translation import class_path_for
from cnn.errors import NonFiniteGradientError
from tests.boring import Loader, regression_data
from tests.mx.test_mx_trainer import QUIET, MxReg, _events, _run_lightning


def _data():
    rng = np.random.default_rng(3)
    weights = {"layer.weight": rng.normal(size=(1, 3)).astype(np.float32), "layer.bias": np.zeros(1, np.float32)}
    return (weights, Loader(*regression_data(28, 0), 4), Loader(*regression_data(10, 1), 4),
            Loader(*regression_data(8, 2), 4))


def _mlx_fit(root: Path, weights, train, val, test, scheduling=None, **flags):
    logger = TensorBoardLogger(str(root), name="run")
    callbacks = [LearningRateMonitor(), ModelCheckpoint(monitor="val_loss", save_last=True, save_top_k=2)]
    if scheduling:
        callbacks.append(GradientAccumulationScheduler(scheduling))
    trainer = Trainer(**{**dict(max_epochs=3, log_every_n_steps=2, limit_train_batches=5, logger=logger,
                                callbacks=callbacks, default_root_dir=str(root)), **QUIET, **flags})
    model = MxReg(weights, "step")
    trainer.fit(model, train, val)
    trainer.test(model, test, verbose=False)
    return logger.log_dir, trainer, model


def _files(root: Path) -> list[str]:
    """Files under ``root``, with the parts that name the framework or the moment made alike."""
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix().replace("/pl/", "/run/").replace(".safetensors", ".ckpt")
        out.append("events" if "events.out.tfevents" in rel else rel.replace("pl/version", "run/version"))
    return sorted(set(out))


@pytest.mark.parametrize("flags", [
    {"accumulate_grad_batches": 2},
    {"accumulate_grad_batches": 3, "compile": False},
    {"scheduling": {1: 2, 2: 3}},
    {"fast_dev_run": 2},
    {"fast_dev_run": True},
    {"overfit_batches": 2},
    {"max_time": {"seconds": 0}},
    {"detect_anomaly": True, "profiler": "simple", "benchmark": True},
], ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()).replace(" ", ""))
def test_each_flag_logs_writes_and_trains_as_lightning_does(tmp_path, flags):
    """Steps and values of every tag, the checkpoint and log files, ``global_step`` and the final weights."""
    weights, train, val, test = _data()
    torch_flags = {k: v for k, v in flags.items() if k != "compile"}
    pl_dir, pl_trainer = _run_lightning(tmp_path / "pl", weights, train, val, test, "step", **torch_flags)
    mx_dir, mx_trainer, model = _mlx_fit(tmp_path / "mx", weights, train, val, test, **flags)

    assert mx_trainer.global_step == pl_trainer.global_step
    assert _files(tmp_path / "mx") == _files(tmp_path / "pl")
    theirs = _events(pl_dir) if os.path.isdir(pl_dir) else {}
    ours = _events(mx_dir) if os.path.isdir(mx_dir) else {}
    assert sorted(ours) == sorted(theirs)
    for tag in theirs:
        assert [s for s, _ in ours[tag]] == [s for s, _ in theirs[tag]], tag
        np.testing.assert_allclose([v for _, v in ours[tag]], [v for _, v in theirs[tag]], rtol=2e-4, atol=1e-5,
                                   err_msg=tag)
    torch_weight = pl_trainer.lightning_module.layer.weight.detach().numpy()
    np.testing.assert_allclose(np.array(model.layer.weight), torch_weight, rtol=1e-4, atol=1e-6)


def test_the_accumulation_scheduler_refuses_a_trainer_that_accumulates_too(tmp_path):
    weights, train, val, test = _data()
    with pytest.raises(ValueError, match="accumulate_grad_batches"):
        _mlx_fit(tmp_path, weights, train, val, test, scheduling={1: 2}, accumulate_grad_batches=2)


def test_lightnings_class_paths_of_timer_and_the_accumulation_scheduler_have_mirrors():
    for name in ("Timer", "GradientAccumulationScheduler"):
        assert class_path_for(f"lightning.pytorch.callbacks.{name}", "mlx") == f"cnn.mx.lightning.{name}"


def test_max_time_adds_a_timer_that_stops_training_once_the_time_is_spent(tmp_path, capsys):
    weights, train, val, test = _data()
    _, trainer, _ = _mlx_fit(tmp_path, weights, train, val, test, max_time={"seconds": 0})
    (timer,) = [c for c in trainer.callbacks if isinstance(c, Timer)]
    assert trainer.global_step == 0 and timer.time_remaining() <= 0
    assert "Time limit reached" in capsys.readouterr().err
    with pytest.raises(ValueError, match="DD:HH:MM:SS"):
        Trainer(max_time="an hour")


def test_a_timer_measures_each_stage_and_counts_training_time_on_across_a_resume(tmp_path):
    weights, train, val, test = _data()
    _, trainer, _ = _mlx_fit(tmp_path, weights, train, val, test, max_time="00:01:00:00")
    (timer,) = [c for c in trainer.callbacks if isinstance(c, Timer)]
    assert trainer.global_step == 15 and 0 < timer.time_elapsed("train") < 3600
    assert timer.time_elapsed("validate") > 0 and timer.time_elapsed("test") > 0
    again = Timer(duration="00:01:00:00")
    again.load_state_dict(timer.state_dict())
    assert again.time_elapsed("train") == pytest.approx(timer.time_elapsed("train"))


@pytest.mark.parametrize("precision,dtype", [("bf16-mixed", mx.bfloat16), ("16-mixed", mx.float16)])
def test_mixed_precision_computes_low_and_keeps_float32_weights_and_optimizer_state(precision, dtype):
    seen = []

    class Probe(MxReg):
        def training_step(self, batch, batch_idx):
            seen.append(self.layer.weight.dtype)
            return super().training_step(batch, batch_idx)

    weights, train, val, _ = _data()
    losses = {}
    for name in ("32-true", precision):
        model = Probe(weights, "step")
        trainer = Trainer(max_epochs=2, logger=False, enable_checkpointing=False, precision=name, **QUIET)
        trainer.fit(model, train, val)
        losses[name] = trainer.callback_metrics["train_loss"].item()
        assert model.layer.weight.dtype == mx.float32
        assert all(a.dtype == mx.float32 for a in trainer.optimizers[0].state.values() if isinstance(a, mx.array)
                   and mx.issubdtype(a.dtype, mx.floating))
    assert seen[0] == mx.float32 and seen[-1] == dtype
    scaler = trainer.precision_plugin.scaler
    if scaler is None:
        assert losses[precision] == pytest.approx(losses["32-true"], rel=5e-2)
    else:  # the first steps' gradients overflow float16 at 2**16 and are skipped, as GradScaler skips them
        assert scaler.state_dict()["scale"] < 2.0 ** 16 and np.isfinite(losses[precision])


def test_float16_loss_scaling_halves_on_overflow_and_grows_after_finite_steps():
    scaler = LossScaler(init_scale=8.0, growth_interval=2)
    seen = []
    for finite in (False, True, True):
        scaler.advance(mx.array(finite))
        seen.append((scaler.state_dict()["scale"], scaler.state_dict()["_growth_tracker"]))
    assert seen == [(4.0, 0), (4.0, 1), (8.0, 0)]


def test_a_float16_run_resumes_with_the_loss_scale_it_had(tmp_path):
    weights, train, val, _ = _data()
    scales = []

    class ScaleAtStart(Callback):
        def on_train_start(self, trainer, pl_module):
            scales.append(trainer.precision_plugin.scaler.state_dict())

    def fit(epochs, ckpt_path=None):
        trainer = Trainer(max_epochs=epochs, logger=False, precision="16-mixed", default_root_dir=str(tmp_path),
                          callbacks=[ModelCheckpoint(dirpath=str(tmp_path), save_last=True), ScaleAtStart()],
                          **QUIET)
        trainer.fit(MxReg(weights, "step"), train, val, ckpt_path=ckpt_path)
        return trainer.precision_plugin.scaler.state_dict()

    saved = fit(1)
    assert saved["scale"] < 2.0 ** 16  # it moved, so the check below can fail
    fit(2, ckpt_path=str(tmp_path / "last.safetensors"))
    assert scales[1] == saved


def test_64_true_trains_in_float64_on_the_cpu_and_resumes_from_its_checkpoint(tmp_path):
    weights, train, val, _ = _data()
    for epochs, ckpt_path in ((1, None), (2, str(tmp_path / "last.safetensors"))):
        model = MxReg(weights, "step")
        # eager: the dtype policy is the same compiled, and eager skips compiling float64 kernels
        trainer = Trainer(max_epochs=epochs, logger=False, precision="64-true", compile=False,
                          callbacks=[ModelCheckpoint(dirpath=str(tmp_path), save_last=True)], **QUIET)
        trainer.fit(model, train, val, ckpt_path=ckpt_path)
        assert model.layer.weight.dtype == mx.float64
    assert trainer.global_step == 14


def test_an_unknown_precision_names_the_supported_ones():
    with pytest.raises(ValueError, match=r"precision='8-true'.*'bf16-mixed'"):
        Precision("8-true")


def test_detect_anomaly_stops_at_the_first_non_finite_gradient_naming_the_parameter(tmp_path):
    class NanGradient(MxReg):
        def training_step(self, batch, batch_idx):
            # batch 1: a finite loss (sqrt(0) = 0) with a NaN gradient (inf - inf) for the bias only
            loss = super().training_step(batch, batch_idx)
            return loss + mx.sqrt(self.layer.bias - self.layer.bias + (batch_idx != 1)).sum()

    weights, train, val, _ = _data()
    trainer = Trainer(max_epochs=1, logger=False, detect_anomaly=True, default_root_dir=str(tmp_path), **QUIET)
    with pytest.raises(NonFiniteGradientError, match=r"gradient of layer\.bias .*batch 1 "):
        trainer.fit(NanGradient(weights, "step"), train, val)
    assert not list(tmp_path.rglob("*.safetensors"))


def test_benchmark_is_accepted_with_a_note(capsys):
    Trainer(benchmark=True, **QUIET)
    assert capsys.readouterr().err.count("no kernel autotuner") == 1
