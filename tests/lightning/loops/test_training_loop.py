"""Ported from Lightning's tests/tests_pytorch/loops/test_training_loop.py (left out: the two that drive a mocked
``_FitLoop``'s private counters, and the eval-mode warning about torch submodules)."""

import itertools

import pytest


def test_outputs_format(pl, tmp_path):
    """test_training_loop.py::test_outputs_format: the step's dict reaches on_train_batch_end as returned."""

    class HookedModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            output = super().training_step(batch, batch_idx)
            self.log("foo", 123)
            output["foo"] = 123
            return output

        @staticmethod
        def _check_output(output):
            assert "loss" in output
            assert "foo" in output
            assert output["foo"] == 123

        def on_train_batch_end(self, outputs, *_):
            HookedModel._check_output(outputs)

    model = HookedModel()

    # fit model
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_val_batches=1,
        limit_train_batches=2,
        limit_test_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model)


@pytest.mark.parametrize(("max_epochs", "batch_idx_"), [(2, 5), (3, 8), (4, 12)])
def test_on_train_batch_start_return_minus_one(pl, max_epochs, batch_idx_, tmp_path):
    """test_training_loop.py::test_on_train_batch_start_return_minus_one: -1 ends the epoch at that batch."""

    class CurrentModel(pl.BoringModel):
        def on_train_batch_start(self, batch, batch_idx):
            if batch_idx == batch_idx_:
                return -1
            return None

    model = CurrentModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=max_epochs, limit_train_batches=10)
    trainer.fit(model)
    if batch_idx_ > trainer.num_training_batches - 1:
        assert trainer.fit_loop.batch_idx == trainer.num_training_batches - 1
        assert trainer.global_step == trainer.num_training_batches * max_epochs
    else:
        assert trainer.fit_loop.batch_idx == batch_idx_
        assert trainer.global_step == batch_idx_ * max_epochs

    assert trainer.is_last_batch


def test_should_stop_mid_epoch(pl, tmp_path):
    """test_training_loop.py::test_should_stop_mid_epoch: training stops mid epoch and validation still runs then."""

    class TestModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.validation_called_at = None

        def training_step(self, batch, batch_idx):
            if batch_idx == 4:
                self.trainer.should_stop = True
            return super().training_step(batch, batch_idx)

        def validation_step(self, *args):
            self.validation_called_at = (self.trainer.current_epoch, self.trainer.global_step)
            return super().validation_step(*args)

    model = TestModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, limit_train_batches=10, limit_val_batches=1)
    trainer.fit(model)

    # even though we stopped mid epoch, the fit loop finished normally and the current epoch was increased
    assert trainer.current_epoch == 1
    assert trainer.global_step == 5
    assert model.validation_called_at == (0, 5)


@pytest.mark.parametrize("max_steps", [7, 20])
def test_tqdm_total_steps_with_iterator_no_length(pl, tmp_path, max_steps):
    """test_training_loop.py::test_tqdm_total_steps_with_iterator_no_length: an endless generator, the bar's total
    is max_steps."""
    batch_size = 4
    model = pl.BoringModel()

    # Infinite generator (no __len__)
    # NOTE: 32 for BoringModel
    infinite_iter = (pl.tensor(pl.np.random.randn(batch_size, 32).astype("float32")) for _ in itertools.count(0))

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_steps=max_steps,
        max_epochs=-1,
        limit_val_batches=0,
        enable_progress_bar=True,
        enable_model_summary=False,
        accelerator="cpu",
    )

    # Override train_dataloader with infinite iterator
    model.train_dataloader = lambda: infinite_iter
    pbar = trainer.progress_bar_callback
    trainer.fit(model)

    # assert progress bar callback uses correct total steps
    assert pbar.train_progress_bar.total == max_steps


@pytest.mark.parametrize("max_steps", [10, 15])
def test_progress_bar_steps(pl, tmp_path, max_steps):
    """test_training_loop.py::test_progress_bar_steps: an IterableDataset without len(), the bar's total is
    max_steps."""
    import torch

    batch_size = 4

    model = pl.BoringModel()
    # Create dataloader here, outside the model
    # NOTE: 32 for boring model
    x = torch.randn(100, 32)

    class SingleTensorDataset(torch.utils.data.IterableDataset):
        def __init__(self, data):
            super().__init__()
            self.data = data

        def __iter__(self):
            yield from self.data  # yield just a tensor, not a tuple

    dataset = SingleTensorDataset(x)
    dataloader = pl.DataLoader(dataset, batch_size=batch_size)

    # Patch model's train_dataloader method to return this dataloader
    model.train_dataloader = lambda: dataloader

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_steps=max_steps,
        max_epochs=-1,
        limit_val_batches=0,
        enable_progress_bar=True,
        enable_model_summary=False,
        accelerator="cpu",
    )
    pbar = trainer.progress_bar_callback
    trainer.fit(model)

    # assert progress bar callback uses correct total steps
    assert pbar.train_progress_bar.total == max_steps


@pytest.mark.parametrize(("max_epochs", "batch_idx_"), [(2, 5), (3, 8)])
def test_lr_updated_on_train_batch_start_returns_minus_one(pl, tmp_path, max_epochs, batch_idx_):
    """test_training_loop.py::test_lr_updated_on_train_batch_start_returns_minus_one: the epoch's scheduler still
    steps when -1 skips the rest of the epoch (the rate read from the optimizer as each framework keeps it)."""

    class TestModel(pl.BoringModel):
        def on_train_batch_start(self, batch, batch_idx):
            if batch_idx == batch_idx_:
                return -1
            return super().on_train_batch_start(batch, batch_idx)

    model = TestModel()
    init_lr = 0.1
    trainer = pl.Trainer(default_root_dir=tmp_path, limit_train_batches=10, max_epochs=max_epochs)
    trainer.fit(model)

    optimizer = trainer.optimizers[0]
    adjusted_lr = ([pg["lr"] for pg in optimizer.param_groups] if hasattr(optimizer, "param_groups")
                   else [float(optimizer.learning_rate)])

    assert len(trainer.lr_scheduler_configs) == 1
    assert all(a == adjusted_lr[0] for a in adjusted_lr)
    assert init_lr * 0.1**max_epochs == pytest.approx(adjusted_lr[0], rel=1e-6)


@pytest.mark.parametrize("limit_val_batches", [0, 0.0])
def test_val_check_interval_with_limit_val_batches_zero(pl, tmp_path, limit_val_batches):
    """test_training_loop.py::test_val_check_interval_with_limit_val_batches_zero: no error for an interval beyond
    the epoch when validation is off."""
    model = pl.BoringModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=5,
        val_check_interval=10,  # greater than limit_train_batches
        limit_val_batches=limit_val_batches,  # validation disabled
    )
    # Should not raise ValueError
    trainer.fit(model)
