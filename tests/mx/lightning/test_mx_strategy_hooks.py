"""The LightningModule hooks around the optimizer step and the batch transfer, called by the MLX mirror as the
installed Lightning calls them: each test runs one toy scenario through real Lightning and through
``cnn.mx.lightning`` and compares what the hooks saw (calls, their arguments, the learning rates, the batches
trained). Scenarios: the warm-up recipe in ``optimizer_step``, ``lr_scheduler_step``,
``configure_gradient_clipping``, the three batch-transfer hooks (on the module and on a DataModule),
``configure_model`` and ``on_train_batch_start`` returning -1."""

from __future__ import annotations

import warnings

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning import LightningDataModule as MxLightningDataModule
from cnn.mx.lightning.core.optimizer import LightningOptimizer as MxLightningOptimizer
from cnn.mx.lightning.trainer import Trainer as MxTrainer

import lightning.pytorch as pl
import mlx.core as mx
import mlx.optimizers as moptim
import numpy as np
import pytest
import torch
from mlx.utils import tree_flatten

from tests.boring import MlxBoringModel, TorchBoringModel, boring_batches

QUIET = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
             num_sanity_val_steps=0, accelerator="cpu")
SIDES = ("lightning", "mlx")


def _base(side):
    return TorchBoringModel if side == "lightning" else MlxBoringModel


def _data(side, n_batches, seed):
    return boring_batches(n_batches, seed, convert=torch.from_numpy if side == "lightning" else None)


def _fit(side, model, train_batches=3, val_batches=0, **flags):
    trainer = (pl.Trainer if side == "lightning" else MxTrainer)(**{**QUIET, "max_epochs": 2, **flags})
    val = _data(side, val_batches, 1) if val_batches else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, _data(side, train_batches, 0), val)
    return trainer


def _lr(optimizer) -> float:
    """The learning rate an optimizer (either framework's, or a Lightning wrapper of one) will step with."""
    if isinstance(optimizer, torch.optim.Optimizer) or hasattr(optimizer, "param_groups"):
        return float(optimizer.param_groups[0]["lr"])
    return float(optimizer.learning_rate)


def _set_lr(optimizer, lr: float) -> None:
    if hasattr(optimizer, "param_groups"):
        for group in optimizer.param_groups:
            group["lr"] = lr
    else:
        optimizer.learning_rate = lr


def _observe_both(run):
    observed = {side: run(side) for side in SIDES}
    assert observed["lightning"], "the Lightning run observed nothing: the comparison would be vacuous"
    return observed


# ----------------------------------------------------------------------------------------- optimizer_step
def _warm_up_run(side, **flags):
    """Lightning's documented warm-up: ``optimizer.step(closure=optimizer_closure)``, then the rate scaled by the
    steps taken over 4."""

    class WarmUp(_base(side)):
        def __init__(self):
            super().__init__()
            object.__setattr__(self, "seen", [])

        def training_step(self, batch, batch_idx):
            self.seen.append(("training_step", int(self.current_epoch), batch_idx, int(self.global_step)))
            return super().training_step(batch, batch_idx)

        def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure):
            wrapped = isinstance(optimizer, pl.core.optimizer.LightningOptimizer if side == "lightning"
                                 else MxLightningOptimizer)
            self.seen.append(("optimizer_step", epoch, batch_idx, wrapped, callable(optimizer_closure)))
            optimizer.step(closure=optimizer_closure)
            _set_lr(optimizer, 0.1 * min(1.0, (self.trainer.global_step + 1) / 4))
            self.seen.append(("lr", round(_lr(optimizer), 6), int(self.trainer.global_step)))

    model = WarmUp()
    trainer = _fit(side, model, **flags)
    return model.seen + [("global_step", trainer.global_step)]


def test_an_overridden_optimizer_step_runs_the_closure_and_the_warm_up_as_in_lightning():
    observed = _observe_both(_warm_up_run)
    assert observed["mlx"] == observed["lightning"]


def test_an_overridden_optimizer_step_with_gradient_accumulation_is_called_per_optimizer_step_as_in_lightning():
    observed = _observe_both(lambda side: _warm_up_run(side, accumulate_grad_batches=2))
    assert observed["mlx"] == observed["lightning"]


def test_an_optimizer_step_that_never_runs_the_closure_is_refused_in_lightnings_words():
    def run(side):
        class NoClosure(_base(side)):
            def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure):
                pass

        with pytest.raises(Exception) as error:
            _fit(side, NoClosure())
        return str(error.value)

    observed = _observe_both(run)
    assert observed["mlx"] == observed["lightning"]
    assert "closure hasn't been executed" in observed["mlx"]


def test_with_compile_an_overridden_optimizer_step_runs_the_training_step_eagerly_after_one_warning():
    eager = _warm_up_run("mlx")
    with pytest.warns(RuntimeWarning, match="training_step runs eagerly, as LightningModule.optimizer_step"):
        trainer = MxTrainer(**{**QUIET, "max_epochs": 2, "compile": True})

        class Probe(MlxBoringModel):
            def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure):
                optimizer.step(closure=optimizer_closure)

        trainer.fit(Probe(), _data("mlx", 3, 0))
    assert trainer.global_step == 6
    assert _warm_up_run("mlx", compile=True) == eager


# ----------------------------------------------------------------------------------------- lr_scheduler_step
def test_an_overridden_lr_scheduler_step_is_called_where_lightning_steps_the_scheduler():
    def run(side):
        class Scheduled(_base(side)):
            def __init__(self):
                super().__init__()
                object.__setattr__(self, "seen", [])

            def configure_optimizers(self):
                if side == "lightning":
                    opt = torch.optim.SGD(self.parameters(), lr=0.1)
                    scheduler = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
                else:
                    opt, scheduler = moptim.SGD(learning_rate=0.1), lambda n: 0.1 * 0.5 ** n
                return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step",
                                                           "frequency": 2}}

            def lr_scheduler_step(self, scheduler, metric):
                self.seen.append(("lr_scheduler_step", metric, int(self.trainer.global_step)))
                super().lr_scheduler_step(scheduler, metric)
                self.seen.append(("lr", round(_lr(self.trainer.optimizers[0]), 6)))

        model = Scheduled()
        _fit(side, model)
        return model.seen

    observed = _observe_both(run)
    assert observed["mlx"] == observed["lightning"]


# ----------------------------------------------------------------------------------------- gradient clipping
def test_configure_gradient_clipping_gets_the_trainer_flags_and_clip_gradients_clips_as_in_lightning():
    def run(side):
        class Clipped(_base(side)):
            def __init__(self):
                super().__init__()
                object.__setattr__(self, "seen", [])

            def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
                self.seen.append(("configure_gradient_clipping", gradient_clip_val, gradient_clip_algorithm))
                self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val,
                                    gradient_clip_algorithm=gradient_clip_algorithm)

            def on_train_batch_start(self, batch, batch_idx):
                self.before = _weights(self)

            def on_train_batch_end(self, outputs, batch, batch_idx):
                # SGD at lr 0.1: the update is 0.1 x the clipped gradient, whose norm is at most 0.01
                self.seen.append(("update_within_clip", bool(np.linalg.norm(_weights(self) - self.before)
                                                              <= 0.1 * 0.01 * (1 + 1e-4))))

        model = Clipped()
        _fit(side, model, max_epochs=1, gradient_clip_val=0.01)
        return model.seen

    observed = _observe_both(run)
    assert observed["mlx"] == observed["lightning"]
    assert ("update_within_clip", True) in observed["mlx"] and ("update_within_clip", False) not in observed["mlx"]


def _weights(model) -> np.ndarray:
    if isinstance(model, torch.nn.Module):
        return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])
    return np.concatenate([np.array(p).ravel() for _, p in tree_flatten(model.trainable_parameters())])


def test_clip_gradients_with_a_value_other_than_the_trainers_is_refused_as_in_lightning():
    def run(side):
        class Contradicting(_base(side)):
            def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
                self.clip_gradients(optimizer, gradient_clip_val=0.5)

        with pytest.raises(Exception) as error:
            _fit(side, Contradicting(), gradient_clip_val=0.01)
        return str(error.value)

    observed = _observe_both(run)
    assert observed["mlx"] == observed["lightning"]


# ----------------------------------------------------------------------------------------- batch transfer
def _kind(batch) -> str:
    leaf = batch[0]
    return "torch" if isinstance(leaf, torch.Tensor) else "mlx" if isinstance(leaf, mx.array) else "numpy"


def _transfer_recorder(base, side):
    """A module recording every batch-transfer hook with its ``dataloader_idx``; ``on_after_batch_transfer``
    zeroes the targets, which the steps then see."""
    native = "torch" if side == "lightning" else "mlx"

    class Transfers(base):
        def __init__(self):
            super().__init__()
            object.__setattr__(self, "seen", [])

        def on_before_batch_transfer(self, batch, dataloader_idx):
            self.seen.append(("on_before_batch_transfer", dataloader_idx))
            return batch

        def transfer_batch_to_device(self, batch, device, dataloader_idx):
            self.seen.append(("transfer_batch_to_device", dataloader_idx))
            return super().transfer_batch_to_device(batch, device, dataloader_idx)

        def on_after_batch_transfer(self, batch, dataloader_idx):
            self.seen.append(("on_after_batch_transfer", dataloader_idx, _kind(batch) == native))
            x, y = batch
            return x, y * 0

        def training_step(self, batch, batch_idx):
            self.seen.append(("training_step", float(batch[1].sum())))
            return super().training_step(batch, batch_idx)

        def validation_step(self, batch, batch_idx):
            self.seen.append(("validation_step", float(batch[1].sum())))

        def test_step(self, batch, batch_idx):
            self.seen.append(("test_step", float(batch[1].sum())))

        def predict_step(self, batch, batch_idx):
            self.seen.append(("predict_step", float(batch[1].sum())))
            return super().predict_step(batch, batch_idx)

    return Transfers


def test_the_batch_transfer_hooks_run_in_lightnings_order_in_every_loop_and_their_batch_is_the_steps():
    def run(side):
        model = _transfer_recorder(_base(side), side)()
        trainer = _fit(side, model, max_epochs=1, train_batches=2, val_batches=1, num_sanity_val_steps=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.test(model, _data(side, 1, 2), verbose=False)
            trainer.predict(model, _data(side, 1, 3))
        return model.seen

    observed = _observe_both(run)
    assert observed["mlx"] == observed["lightning"]


def test_a_datamodules_batch_transfer_hooks_are_called_instead_of_the_modules_as_in_lightning():
    def run(side):
        seen = []
        base = pl.LightningDataModule if side == "lightning" else MxLightningDataModule

        class Data(base):
            def train_dataloader(self):
                return _data(side, 2, 0)

            def on_before_batch_transfer(self, batch, dataloader_idx):
                seen.append(("datamodule.on_before_batch_transfer", dataloader_idx))
                return batch

        class Module(_base(side)):
            def on_before_batch_transfer(self, batch, dataloader_idx):
                seen.append(("module.on_before_batch_transfer", dataloader_idx))
                return batch

            def on_after_batch_transfer(self, batch, dataloader_idx):
                seen.append(("module.on_after_batch_transfer", dataloader_idx))
                return batch

        trainer = (pl.Trainer if side == "lightning" else MxTrainer)(**{**QUIET, "max_epochs": 1})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(Module(), datamodule=Data())
        return seen

    observed = _observe_both(run)
    assert observed["mlx"] == observed["lightning"]


# ----------------------------------------------------------------------------------------- configure_model
def test_configure_model_runs_after_setup_and_before_configure_optimizers_in_every_entry_point():
    def run(side):
        class Late(_base(side)):
            def __init__(self):
                super().__init__()
                object.__setattr__(self, "seen", [])

            def setup(self, stage):
                self.seen.append(("setup", str(getattr(stage, "value", stage))))

            def configure_model(self):
                self.seen.append(("configure_model",))

            def configure_optimizers(self):
                self.seen.append(("configure_optimizers",))
                return super().configure_optimizers()

            def on_fit_start(self):
                self.seen.append(("on_fit_start",))

        model = Late()
        trainer = _fit(side, model, max_epochs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.test(model, _data(side, 1, 2), verbose=False)
        return model.seen

    observed = _observe_both(run)
    assert observed["mlx"] == observed["lightning"]


# ----------------------------------------------------------------------------------------- on_train_batch_start
def test_on_train_batch_start_returning_minus_one_skips_the_rest_of_the_epoch_as_in_lightning():
    def run(side):
        class Skipping(_base(side)):
            def __init__(self):
                super().__init__()
                object.__setattr__(self, "seen", [])

            def configure_optimizers(self):
                if side == "lightning":
                    opt = torch.optim.SGD(self.parameters(), lr=0.1)
                    return [opt], [{"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1, 0.5), "interval": "step"}]
                return [moptim.SGD(learning_rate=0.1)], [{"scheduler": lambda n: 0.1 * 0.5 ** n, "interval": "step"}]

            def on_train_batch_start(self, batch, batch_idx):
                self.seen.append(("on_train_batch_start", int(self.current_epoch), batch_idx))
                return -1 if (int(self.current_epoch), batch_idx) == (0, 1) else None

            def training_step(self, batch, batch_idx):
                self.seen.append(("training_step", batch_idx))
                return super().training_step(batch, batch_idx)

            def on_train_batch_end(self, outputs, batch, batch_idx):
                self.seen.append(("on_train_batch_end", batch_idx))

            def validation_step(self, batch, batch_idx):
                self.seen.append(("validation_step", int(self.current_epoch)))

            def on_train_epoch_end(self):
                self.seen.append(("on_train_epoch_end", int(self.current_epoch), int(self.trainer.global_step),
                                  round(_lr(self.trainer.optimizers[0]), 6)))

        model = Skipping()
        trainer = _fit(side, model, val_batches=1)
        return model.seen + [("global_step", trainer.global_step)]

    observed = _observe_both(run)
    assert observed["mlx"] == observed["lightning"]
