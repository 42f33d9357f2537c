"""Specification of the MLX Trainer (cnn.mx.lightning.trainer) on toy modules and in-memory data.

Each test states one contract: TensorBoard output identical to Lightning's, exact resume, atomic checkpoints,
eval mode, gradient clipping, NaN stop, compile == eager, signals, callbacks.
"""

from __future__ import annotations

import glob
import os
import signal
import warnings

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint
from cnn.mx.lightning.core.module import LightningModule
from cnn.mx.lightning.loggers import TensorBoardLogger
from cnn.mx.lightning.plugins.io import safetensors_io as ckpt_mod
from cnn.mx.lightning.trainer import Trainer

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map

from cnn.atomic import atomic_path
from cnn.errors import CheckpointError, NonFiniteLossError, TrainingInterrupted
from cnn.runs import OPTIMIZERS_KEY
from tests.boring import Loader, regression_data

CHECKPOINT_IO = ckpt_mod.SafetensorsCheckpointIO()  # the trainer's default file format
load_checkpoint = CHECKPOINT_IO.load_checkpoint


def save_checkpoint(path, checkpoint):
    CHECKPOINT_IO.save_checkpoint(checkpoint, path)


QUIET = dict(enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")


# ---------------------------------------------------------------------------------------------- toy data / models
class Toy(LightningModule):
    """tests.boring's regression with a hidden layer, optional dropout and Adam and a per-epoch lr schedule:
    what the Trainer's dropout, schedule and resume contracts need beyond ``MlxBoringModel``."""

    def __init__(self, dropout: float = 0.0, adam: bool = False, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.hidden = nn.Linear(3, 8)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(8, 1)

    def __call__(self, x):
        return self.out(self.drop(nn.relu(self.hidden(x))))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = ((self(x) - y) ** 2).mean()
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", ((self(x) - y) ** 2).mean())

    def configure_optimizers(self):
        lr = self.hparams.lr
        opt = optim.Adam(learning_rate=lr) if self.hparams.adam else optim.SGD(learning_rate=lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": lambda n: lr * 0.5 ** n, "interval": "epoch"}}


def params(model):
    return {k: np.array(v) for k, v in tree_flatten(model.parameters())}


def train_loader(n=40, bs=8, shuffle=True):
    return Loader(*regression_data(n, 0), bs, shuffle=shuffle)


def val_loader(n=16, bs=8):
    return Loader(*regression_data(n, 1), bs)


# --------------------------------------------------------------------------------------------- TensorBoard == Lightning
def _events(log_dir):
    # every event file of the run, merged in the order written (a directory's EventAccumulator reads the
    # files in name order, which puts a fit's and a test's files in either order within one second)
    from cnn.tools.events import read_scalars

    return {tag: [(s.step, s.value) for s in series] for tag, series in read_scalars(log_dir).items()}


def _run_lightning(tmp_path, weights, train, val, test, interval, scheduling=None, **flags):
    """Lightning's fit and test of the regression ``MxReg`` mirrors; ``flags`` override the Trainer's arguments,
    ``scheduling`` adds a ``GradientAccumulationScheduler``. Returns the log directory and the trainer."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger as PLTensorBoardLogger

    class TorchReg(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)
            with torch.no_grad():
                self.layer.weight.copy_(torch.from_numpy(weights["layer.weight"]))
                self.layer.bias.copy_(torch.from_numpy(weights["layer.bias"]))

        def training_step(self, batch, batch_idx):
            x, y = batch
            err = self.layer(x) - y
            loss = (err ** 2).mean()
            self.log("train_loss", loss, prog_bar=True)
            self.log("train_mae", err.abs().mean(), on_step=True, on_epoch=True)
            return loss

        def on_train_epoch_end(self):
            self.log("epoch_marker", float(self.current_epoch) * 10)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            err = self.layer(x) - y
            self.log("val_loss", (err ** 2).mean(), prog_bar=True)
            self.log("val_batch_mae", err.abs().mean(), on_step=True, on_epoch=False)

        def test_step(self, batch, batch_idx):
            self.log("test_loss", ((self.layer(batch[0]) - batch[1]) ** 2).mean())

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.05)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda n: 0.8 ** n)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}

    def torch_loader(loader):
        class L:
            def __len__(self):
                return len(loader)

            def __iter__(self):
                return ((torch.from_numpy(x), torch.from_numpy(y)) for x, y in loader)
        return L()

    logger = PLTensorBoardLogger(str(tmp_path), name="pl", default_hp_metric=False)
    callbacks = [LR := pl.callbacks.LearningRateMonitor(),
                 pl.callbacks.ModelCheckpoint(monitor="val_loss", save_last=True, save_top_k=2)]
    if scheduling:
        callbacks.append(pl.callbacks.GradientAccumulationScheduler(scheduling))
    trainer = pl.Trainer(**{**dict(max_epochs=3, log_every_n_steps=2, limit_train_batches=5, logger=logger,
                                   callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
                                   accelerator="cpu", default_root_dir=str(tmp_path)), **flags})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(TorchReg(), torch_loader(train), torch_loader(val))
        trainer.test(trainer.lightning_module, torch_loader(test), verbose=False)
    del LR
    return logger.log_dir, trainer


class MxReg(LightningModule):
    def __init__(self, weights, interval):
        super().__init__()
        self.interval = interval
        self.layer = nn.Linear(3, 1)
        self.layer.update({"weight": mx.array(weights["layer.weight"]), "bias": mx.array(weights["layer.bias"])})

    def training_step(self, batch, batch_idx):
        x, y = batch
        err = self.layer(x) - y
        loss = (err ** 2).mean()
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_mae", mx.abs(err).mean(), on_step=True, on_epoch=True)
        return loss

    def on_train_epoch_end(self):
        self.log("epoch_marker", float(self.current_epoch) * 10)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        err = self.layer(x) - y
        self.log("val_loss", (err ** 2).mean(), prog_bar=True)
        self.log("val_batch_mae", mx.abs(err).mean(), on_step=True, on_epoch=False)

    def test_step(self, batch, batch_idx):
        self.log("test_loss", ((self.layer(batch[0]) - batch[1]) ** 2).mean())

    def configure_optimizers(self):
        return {"optimizer": optim.SGD(learning_rate=0.05),
                "lr_scheduler": {"scheduler": lambda n: 0.05 * 0.8 ** n, "interval": self.interval}}


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_tensorboard_events_match_lightning(tmp_path, interval):
    """Same module logic in both frameworks -> same tags, same steps, same values (and same checkpoint names).

    Covers step metrics every log_every_n_steps, forked _step/_epoch names, epoch-end hook logging, batch-size
    weighted validation means, on_step validation logging, LearningRateMonitor for epoch and step schedulers, test
    after fit, the ``epoch`` scalar, and top-k/last checkpoint names."""
    rng = np.random.default_rng(3)
    weights = {"layer.weight": rng.normal(size=(1, 3)).astype(np.float32),
               "layer.bias": np.zeros(1, np.float32)}
    train = Loader(*regression_data(28, 0), 4)  # 7 batches, limited to 5
    val = Loader(*regression_data(10, 1), 4)  # batch sizes 4, 4, 2: epoch values are batch-size weighted
    test = Loader(*regression_data(8, 2), 4)
    pl_dir, _ = _run_lightning(tmp_path, weights, train, val, test, interval)

    logger = TensorBoardLogger(str(tmp_path), name="mx")
    trainer = Trainer(max_epochs=3, log_every_n_steps=2, limit_train_batches=5, logger=logger,
                      callbacks=[LearningRateMonitor(), ModelCheckpoint(monitor="val_loss", save_last=True,
                                                                        save_top_k=2)], **QUIET)
    model = MxReg(weights, interval)
    trainer.fit(model, train, val)
    trainer.test(model, test, verbose=False)

    ours, theirs = _events(logger.log_dir), _events(pl_dir)
    assert sorted(ours) == sorted(theirs)
    assert {"train_loss", "train_mae_step", "train_mae_epoch", "epoch_marker", "val_loss", "val_batch_mae",
            "test_loss", "lr-SGD", "epoch"} <= set(ours)
    for tag in theirs:
        assert [s for s, _ in ours[tag]] == [s for s, _ in theirs[tag]], tag
        np.testing.assert_allclose([v for _, v in ours[tag]], [v for _, v in theirs[tag]], rtol=2e-4, atol=1e-5,
                                   err_msg=tag)
    assert theirs["train_loss"][0][0] == 1  # (k + 1) % log_every_n_steps == 0 -> steps 1, 3, 5, ...
    assert os.path.isfile(os.path.join(logger.log_dir, "hparams.yaml"))
    def names(d, ext):
        return sorted(os.path.basename(p)[: -len(ext)] for p in glob.glob(os.path.join(d, "*" + ext)))
    assert names(os.path.join(logger.log_dir, "checkpoints"), ".safetensors") == \
        names(os.path.join(pl_dir, "checkpoints"), ".ckpt")


# ---------------------------------------------------------------------------------------------- exact resume
class SendSignal(Callback):
    def __init__(self, at_step, signum=signal.SIGTERM):
        self.at_step, self.signum = at_step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.at_step:
            os.kill(os.getpid(), self.signum)


def _fit(tmp_path, name, ckpt_path=None, callbacks=(), max_epochs=3, logger=False, **kw):
    mx.random.seed(1234)  # same init; a resumed run overwrites weights and RNG from the checkpoint
    model = Toy(dropout=0.3, adam=True)
    trainer = Trainer(max_epochs=max_epochs, default_root_dir=str(tmp_path / name), logger=logger,
                      callbacks=[ModelCheckpoint(dirpath=str(tmp_path / name / "ckpt"), save_last=True), *callbacks],
                      **QUIET, **kw)
    trainer.fit(model, train_loader(), val_loader(), ckpt_path=ckpt_path)
    return model, trainer


def test_sigterm_saves_last_and_resume_is_exact(tmp_path):
    """SIGTERM mid-epoch: stop at the batch boundary, write last, exit non-zero; resuming is bitwise exact."""
    reference, ref_trainer = _fit(tmp_path, "ref")
    with pytest.raises(TrainingInterrupted) as exc:
        _fit(tmp_path, "run", callbacks=[SendSignal(at_step=7)])  # epoch 1, batch 1 of 5
    assert exc.value.code == 128 + signal.SIGTERM
    last = str(tmp_path / "run" / "ckpt" / "last.safetensors")
    state = load_checkpoint(last)
    fit_loop = state["loops"]["fit_loop"]
    assert (state["global_step"], fit_loop["epoch_loop.batch_progress"]["batch_in_epoch"]) == (7, 2)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    resumed, trainer = _fit(tmp_path, "run", ckpt_path="last")
    assert trainer.global_step == ref_trainer.global_step == 15
    for k, v in params(reference).items():
        np.testing.assert_array_equal(params(resumed)[k], v, err_msg=k)
    assert trainer.callback_metrics["val_loss"] == ref_trainer.callback_metrics["val_loss"]


@pytest.mark.parametrize("where", ["batch_end:5", "batch_end:8", "validation_end:5"])
def test_resume_from_any_checkpoint_is_exact(tmp_path, where):
    """Checkpoints written at on_train_batch_end (every_n_train_steps; at step 5 the epoch's validation is still
    pending) or at on_validation_end resume to identical weights, validation metric and logged steps."""
    hook, step = where.split(":")
    reference, ref_trainer = _fit(tmp_path, "ref", logger=TensorBoardLogger(str(tmp_path), name="ref"))
    if hook == "batch_end":
        saver = ModelCheckpoint(dirpath=str(tmp_path / "saved"), every_n_train_steps=1, save_top_k=-1)
    else:
        saver = ModelCheckpoint(dirpath=str(tmp_path / "saved"), monitor="val_loss", save_top_k=-1,
                                save_on_train_epoch_end=False)
    _fit(tmp_path, "saving", callbacks=[saver], max_epochs=2)
    path = glob.glob(str(tmp_path / "saved" / f"*step={step}.safetensors"))[0]
    logger = TensorBoardLogger(str(tmp_path), name="resumed")
    resumed, trainer = _fit(tmp_path, "resumed", ckpt_path=path, logger=logger)
    for k, v in params(reference).items():
        np.testing.assert_array_equal(params(resumed)[k], v, err_msg=k)
    assert trainer.callback_metrics["val_loss"] == ref_trainer.callback_metrics["val_loss"]
    ref_events = _events(str(tmp_path / "ref" / "version_0"))
    for tag, points in _events(logger.log_dir).items():  # the resumed run continues the same step axis
        assert set(points) <= set(ref_events[tag]), tag


def flat_loop_layout(fit_loop: dict) -> dict:
    """``loops.fit_loop`` as versions up to f5fbefb wrote it (before the mirror took Lightning's source layout):
    one flat dict of the counters and the train results, here written from the same state in today's layout."""
    batch = fit_loop["epoch_loop.batch_progress"]
    return {"epoch": fit_loop["epoch_progress"]["current"], "batch_in_epoch": batch["batch_in_epoch"],
            "batches_that_stepped": batch["batches_that_stepped"],
            "global_step": fit_loop["epoch_loop.automatic_optimization.optim_progress"]["steps"],
            "pending_val": batch["pending_val"], "total_batch_idx": batch["total_batch_idx"],
            "train_results": fit_loop["epoch_loop.results"]}


def as_older_versions_wrote(checkpoint: dict) -> dict:
    """``checkpoint`` as versions up to f5fbefb wrote it: the flat loop state, the one optimizer's state under
    ``optimizer_state``, callback scores as numbers, and none of the keys added since (Lightning's version, the
    optimizer classes)."""
    checkpoint["loops"]["fit_loop"] = flat_loop_layout(checkpoint["loops"]["fit_loop"])
    (checkpoint["optimizer_state"],) = checkpoint.pop("optimizer_states")
    for key in ("pytorch-lightning_version", OPTIMIZERS_KEY):
        checkpoint.pop(key, None)
    checkpoint["callbacks"] = tree_map(lambda v: v.item() if isinstance(v, mx.array) and v.size == 1 else v,
                                       checkpoint["callbacks"])
    return checkpoint


# Each resume point an older checkpoint can hold: after a batch (at step 5 the epoch's validation still pending),
# after validation, and at the end of a training epoch.
OLD_SAVERS = {"batch_end": dict(every_n_train_steps=1, save_top_k=-1),
              "validation_end": dict(monitor="val_loss", save_top_k=-1, save_on_train_epoch_end=False),
              "train_epoch_end": dict(save_top_k=-1, save_on_train_epoch_end=True)}


@pytest.mark.parametrize("where", ["batch_end:5", "batch_end:7", "validation_end:5", "train_epoch_end:5"])
def test_checkpoints_in_the_flat_loop_layout_of_older_versions_resume_exactly(tmp_path, where):
    """A checkpoint in the layout an older version wrote (its loop state one flat ``loops.fit_loop`` dict) resumes
    to the weights, validation metric and logged steps of an uninterrupted run, as a current one does. The old
    checkpoint is this run's own, rewritten in the flat layout: both runs are computed here, so they compare
    bit for bit on any machine."""
    hook, step = where.split(":")
    reference, ref_trainer = _fit(tmp_path, "ref", logger=TensorBoardLogger(str(tmp_path), name="ref"),
                                  max_epochs=2)
    saver = ModelCheckpoint(dirpath=str(tmp_path / "saved"), **OLD_SAVERS[hook])
    _fit(tmp_path, "saving", callbacks=[saver], max_epochs=2)
    (path,) = glob.glob(str(tmp_path / "saved" / f"*step={step}.safetensors"))
    checkpoint = load_checkpoint(path)
    assert "epoch_progress" in checkpoint["loops"]["fit_loop"]  # today's layout, rewritten below
    checkpoint = as_older_versions_wrote(checkpoint)
    old = str(tmp_path / "old.safetensors")
    save_checkpoint(old, checkpoint)
    assert list(mx.load(old, return_metadata=True)[1]) == ["lightning"]  # no ".types" entry, as older files
    assert set(load_checkpoint(old)["loops"]["fit_loop"]) == {
        "epoch", "batch_in_epoch", "batches_that_stepped", "global_step", "pending_val", "total_batch_idx",
        "train_results"}
    logger = TensorBoardLogger(str(tmp_path), name="resumed")
    resumed, trainer = _fit(tmp_path, "resumed", ckpt_path=old, logger=logger, max_epochs=2)
    assert trainer.global_step == ref_trainer.global_step == 10
    for k, v in params(reference).items():
        np.testing.assert_array_equal(params(resumed)[k], v, err_msg=k)
    assert trainer.callback_metrics["val_loss"] == ref_trainer.callback_metrics["val_loss"]
    ref_events = _events(str(tmp_path / "ref" / "version_0"))
    for tag, points in _events(logger.log_dir).items():
        assert set(points) <= set(ref_events[tag]), tag


class DataModule:
    """Duck-typed datamodule recording its hook calls, with a resumable state."""

    def __init__(self):
        self.calls, self.loaded = [], None

    def prepare_data(self):
        self.calls.append("prepare_data")

    def setup(self, stage):
        self.calls.append(f"setup:{stage}")

    def teardown(self, stage):
        self.calls.append(f"teardown:{stage}")

    def train_dataloader(self):
        return train_loader()

    def val_dataloader(self):
        return val_loader()

    def state_dict(self):
        return {"seen": len(self.calls)}

    def load_state_dict(self, state):
        self.loaded = state


def test_datamodule_hooks_state_and_stepping_batches(tmp_path):
    class SizedSchedule(Toy):
        def configure_optimizers(self):
            self.total = self.trainer.estimated_stepping_batches  # loads the train loader early, like Lightning
            return optim.SGD(learning_rate=0.01)

    dm = DataModule()
    model = SizedSchedule()
    trainer = Trainer(max_epochs=2, default_root_dir=str(tmp_path), logger=False, **QUIET)
    trainer.fit(model, datamodule=dm)
    assert model.total == 10 and trainer.global_step == 10
    assert dm.calls == ["prepare_data", "setup:fit", "teardown:fit"]
    assert load_checkpoint(trainer.checkpoint_callback.best_model_path)["DataModule"] == {"seen": 2}
    trainer.validate(model, datamodule=dm, ckpt_path="best", verbose=False)
    assert dm.loaded == {"seen": 2} and dm.calls[-2:] == ["setup:validate", "teardown:validate"]


# ---------------------------------------------------------------------------------------------- checkpoint files
def test_checkpoint_round_trip_and_atomic_write(tmp_path, monkeypatch):
    """Crash during the write leaves the previous file intact and loadable, and no temp file behind."""
    path = str(tmp_path / "last.safetensors")
    first = {"epoch": 1, "global_step": 10, "state_dict": {"w": mx.ones((2, 2))}, "optimizer_state": {},
             "rng_state": mx.random.key(1), "callbacks": {"X": {"best": float("inf")}}}
    save_checkpoint(path, first)

    def crash(file, data):  # the bytes are made in memory; the write is torn halfway
        with atomic_path(file) as tmp:
            with open(tmp, "wb") as f:
                f.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod, "write_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {**first, "global_step": 99})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["global_step"] == 10 and state["callbacks"]["X"]["best"] == float("inf")
    np.testing.assert_array_equal(np.array(state["state_dict"]["w"]), np.ones((2, 2)))
    assert os.listdir(tmp_path) == ["last.safetensors"]


def test_corrupt_or_foreign_checkpoints_raise_one_line_errors(tmp_path):
    good = str(tmp_path / "good.safetensors")
    save_checkpoint(good, {"epoch": 0, "global_step": 0, "state_dict": {"w": mx.ones((64,))}})
    truncated = str(tmp_path / "trunc.safetensors")
    with open(good, "rb") as f, open(truncated, "wb") as g:
        g.write(f.read()[:-100])
    foreign = str(tmp_path / "foreign.safetensors")
    mx.save_safetensors(foreign, {"w": mx.ones(2)})
    for bad in (truncated, foreign, str(tmp_path / "missing.safetensors")):
        with pytest.raises(CheckpointError) as exc:
            load_checkpoint(bad)
        assert "\n" not in str(exc.value)
    # a checkpoint of another model is rejected when fitting
    with pytest.raises(CheckpointError, match="does not match the model"):
        Trainer(max_epochs=1, logger=False, enable_checkpointing=False, **QUIET).fit(
            Toy(), train_loader(), ckpt_path=good)


# ---------------------------------------------------------------------------------------------- step semantics
def test_dropout_is_off_in_validation_and_prediction(tmp_path):
    seen = []

    class Probe(Callback):
        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.append(("val", pl_module.training))

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(("train", pl_module.training))

    model = Toy(dropout=0.9)
    trainer = Trainer(max_epochs=1, logger=False, enable_checkpointing=False, callbacks=[Probe()], **QUIET)
    trainer.fit(model, train_loader(), val_loader())
    assert {s for s in seen if s[0] == "val"} == {("val", False)}
    assert {s for s in seen if s[0] == "train"} == {("train", True)} and model.training
    x, y = regression_data(16, 1)
    preds = trainer.predict(model, Loader(x, y, 8))
    val = trainer.validate(model, val_loader(), verbose=False)[0]["val_loss"]
    assert model.training  # train mode restored after predict/validate
    model.eval()  # reference: deterministic forward without dropout
    expected = np.array(model(mx.array(x)))
    np.testing.assert_allclose(np.concatenate([np.array(p) for p in preds]), expected, rtol=1e-6)
    assert val == pytest.approx(float(((expected - y) ** 2).mean()), rel=1e-5)


def _one_step(compile, clip_val=None, clip_algo=None, module_cls=Toy):
    mx.random.seed(0)
    model = module_cls(lr=1.0)
    before = params(model)
    trainer = Trainer(max_steps=1, logger=False, enable_checkpointing=False, num_sanity_val_steps=0,
                      compile=compile, gradient_clip_val=clip_val, gradient_clip_algorithm=clip_algo, **QUIET)
    x, y = regression_data(8, 0)
    trainer.fit(model, Loader(x, y * 100, 8))  # large targets -> large gradients
    return before, params(model), trainer


@pytest.mark.parametrize("compile", [True, False])
def test_gradient_clipping(compile):
    before, after, _ = _one_step(compile, clip_val=0.5, clip_algo="norm")  # SGD lr=1: update == -clipped grad
    norm = np.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in before))
    assert norm == pytest.approx(0.5, rel=1e-4)
    before, after, _ = _one_step(compile, clip_val=0.01, clip_algo="value")
    assert max(np.abs(after[k] - before[k]).max() for k in before) == pytest.approx(0.01, rel=1e-5)


def test_compiled_and_eager_step_agree():
    b1, compiled, t1 = _one_step(True)
    b2, eager, t2 = _one_step(False)
    for k in b1:
        np.testing.assert_array_equal(b1[k], b2[k])
        np.testing.assert_allclose(compiled[k], eager[k], rtol=1e-5, atol=1e-6)
    assert t1.callback_metrics["train_loss"].item() == pytest.approx(t2.callback_metrics["train_loss"].item(), rel=1e-6)


def test_untraceable_step_falls_back_to_eager_with_one_warning():
    class ItemInStep(Toy):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            if loss.item() > 1e9:  # python control flow on a value: cannot be traced
                return loss * 0
            return loss

    with pytest.warns(RuntimeWarning, match="running eagerly") as record:
        _, fallback, _ = _one_step(True, module_cls=ItemInStep)
    assert len([w for w in record if "eagerly" in str(w.message)]) == 1
    _, eager, _ = _one_step(False)
    for k in eager:
        np.testing.assert_allclose(fallback[k], eager[k], rtol=1e-6)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    x, y = regression_data(40, 0)
    x[24:32] = np.nan  # batch 3 of epoch 0
    seen = []

    class OnException(Callback):
        def on_exception(self, trainer, pl_module, exception):
            seen.append(type(exception))

    ckpt = ModelCheckpoint(dirpath=str(tmp_path), every_n_train_steps=1, save_last=True)
    trainer = Trainer(max_epochs=2, logger=False, callbacks=[ckpt, OnException()], **QUIET)
    with pytest.raises(NonFiniteLossError, match="loss is nan"):
        trainer.fit(Toy(), Loader(x, y, 8), val_loader())
    assert seen == [NonFiniteLossError]
    last = load_checkpoint(str(tmp_path / "last.safetensors"))
    assert last["global_step"] == 3
    assert all(np.isfinite(np.array(v)).all() for v in last["state_dict"].values())


# ---------------------------------------------------------------------------------------------- callbacks / config
def test_early_stopping_and_checkpoint_best(tmp_path):
    class Plateau(Toy):
        def validation_step(self, batch, batch_idx):
            self.log("val_metric", mx.array(1.0))

    stopper = EarlyStopping(monitor="val_metric", patience=1)
    best = ModelCheckpoint(dirpath=str(tmp_path), monitor="val_metric", filename="{epoch}-{val_metric:.2f}")
    trainer = Trainer(max_epochs=10, logger=False, callbacks=[stopper, best], **QUIET)
    trainer.fit(Plateau(), train_loader(), val_loader())
    assert (trainer.current_epoch, stopper.stopped_epoch, trainer.should_stop) == (2, 1, True)
    assert os.path.basename(best.best_model_path) == "epoch=0-val_metric=1.00.safetensors"
    assert best.best_model_score == 1.0
    assert load_checkpoint(best.best_model_path)["hyper_parameters"] == {"dropout": 0.0, "adam": False, "lr": 0.05}


def test_unsupported_lightning_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"barebones=True.*not supported"):
        Trainer(barebones=True)
    with pytest.raises(ValueError, match="precision"):
        Trainer(precision="transformer-engine")
    assert "devices" in Trainer.UNSUPPORTED


def test_logger_versions_and_layout(tmp_path):
    first, second = TensorBoardLogger(str(tmp_path)), TensorBoardLogger(str(tmp_path))
    first.log_metrics({"a": 1.0}, step=0)
    first.log_image("cm", np.zeros((4, 5, 3), np.uint8), step=0)
    first.finalize("success")
    assert first.log_dir == str(tmp_path / "lightning_logs" / "version_0") and second.version == 1
    assert os.path.isfile(os.path.join(first.log_dir, "hparams.yaml"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(first.log_dir)
    acc.Reload()
    assert acc.Tags()["images"] == ["cm"] and acc.Scalars("a")[0].value == 1.0


def test_the_epoch_progress_bar_counts_training_batches_only_as_lightnings_does(tmp_path, capsys):
    # Lightning 2.x: "Epoch 0: 100%| 7/7"; validation runs under its own bar
    trainer = Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
                      accelerator="cpu", default_root_dir=str(tmp_path))
    trainer.fit(Toy(), Loader(*regression_data(28, 0), 4), Loader(*regression_data(12, 1), 4))
    shown = capsys.readouterr().out.replace("\r", "\n")
    assert "Epoch 0: 100%" in shown and " 7/7 " in shown
    assert "/10 " not in shown  # 7 training + 3 validation batches would be the Lightning 1.x bar
