"""Ported from Lightning's tests/tests_pytorch/loops/test_training_loop_flow_scalar.py: the training loop with a
scalar (or ``None``) from ``training_step``."""

import warnings

import pytest
from torch.utils.data._utils.collate import default_collate


def _fit(pl, model, tmp_path):
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=2,
        max_epochs=2,
        log_every_n_steps=1,
        enable_model_summary=False,
    )
    trainer.fit(model)
    return trainer


def test__training_step__flow_scalar(pl, tmp_path):
    """test_training_loop_flow_scalar.py::test__training_step__flow_scalar: only training_step can be used."""

    class TestModel(pl.DeterministicModel):
        def training_step(self, batch, batch_idx):
            acc = self.step(batch, batch_idx)
            acc = acc + batch_idx
            self.training_step_called = True
            return acc

        def backward(self, loss):
            return pl.LightningModule.backward(self, loss)

    model = TestModel()
    model.val_dataloader = None
    _fit(pl, model, tmp_path)

    # make sure correct steps were called
    assert model.training_step_called


def test__training_step__tr_batch_end__flow_scalar(pl, tmp_path):
    """test_training_loop_flow_scalar.py::test__training_step__tr_batch_end__flow_scalar."""

    class TestModel(pl.DeterministicModel):
        def training_step(self, batch, batch_idx):
            acc = self.step(batch, batch_idx)
            acc = acc + batch_idx
            self.training_step_called = True
            self.out = acc
            return acc

        def on_train_batch_end(self, tr_step_output, *_):
            assert self.count_num_graphs({"loss": tr_step_output}) == 0

        def backward(self, loss):
            return pl.LightningModule.backward(self, loss)

    model = TestModel()
    model.val_dataloader = None
    _fit(pl, model, tmp_path)

    # make sure correct steps were called
    assert model.training_step_called


def test_train_step_no_return(pl, tmp_path):
    """test_training_loop_flow_scalar.py::test_train_step_no_return: Lightning's warning when training_step returns
    nothing under automatic optimization, none under manual optimization."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch):
            self.training_step_called = True
            loss = self.step(batch[0])
            self.log("a", loss, on_step=True, on_epoch=True)

        def validation_step(self, batch, batch_idx):
            self.validation_step_called = True

    model = TestModel()
    trainer_args = {"default_root_dir": tmp_path, "fast_dev_run": 2}
    trainer = pl.Trainer(**trainer_args)

    pl.Closure.warning_cache.clear()

    with pytest.warns(UserWarning, match=r"training_step` returned `None"):
        trainer.fit(model)

    assert model.training_step_called
    assert model.validation_step_called

    model = TestModel()
    model.automatic_optimization = False
    trainer = pl.Trainer(**trainer_args)

    pl.Closure.warning_cache.clear()

    with warnings.catch_warnings():  # lightning_utilities' no_warning_call
        warnings.filterwarnings("error", message=r".*training_step` returned `None", category=UserWarning)
        trainer.fit(model)


@pytest.mark.mirror_differs("the test's second half feeds `_AutomaticOptimization.run` the torch tensors of a "
                            "DataLoader directly, which MLX cannot compute with (the loop's batch_to_device makes "
                            "them mx.array)")
def test_training_step_no_return_when_even(pl, tmp_path):
    """test_training_loop_flow_scalar.py::test_training_step_no_return_when_even: correctness when some training
    steps are skipped."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            self.training_step_called = True
            loss = self.step(batch[0])
            self.log("a", loss, on_step=True, on_epoch=True)
            return loss if batch_idx % 2 else None

    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=4,
        limit_val_batches=1,
        max_epochs=4,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )

    pl.Closure.warning_cache.clear()

    with pytest.warns(UserWarning, match=r".*training_step` returned `None.*"):
        trainer.fit(model)

    trainer.state.stage = pl.RunningStage.TRAINING

    # manually check a few batches
    for batch_idx, batch in enumerate(model.train_dataloader()):
        kwargs = {"batch": batch, "batch_idx": batch_idx}
        out = trainer.fit_loop.epoch_loop.automatic_optimization.run(trainer.optimizers[0], batch_idx, kwargs)
        if not batch_idx % 2:
            assert out == {}


def test_training_step_none_batches(pl, tmp_path):
    """test_training_loop_flow_scalar.py::test_training_step_none_batches: the train dataloader gives None for some
    steps."""

    class TestModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.counter = 0

        def collate_none_when_even(self, batch):
            result = None if self.counter % 2 == 0 else default_collate(batch)
            self.counter += 1
            return result

        def train_dataloader(self):
            return pl.DataLoader(pl.RandomDataset(32, 4), collate_fn=self.collate_none_when_even)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            if batch_idx % 2 == 0:
                assert outputs is None
            else:
                assert outputs

    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_val_batches=1,
        max_epochs=4,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )

    with pytest.warns(UserWarning, match=r".*train_dataloader yielded None.*"):
        trainer.fit(model)
