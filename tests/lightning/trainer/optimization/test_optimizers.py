"""Ported from Lightning's tests/tests_pytorch/trainer/optimization/test_optimizers.py.

Schedulers are ``pl.step_lr(optimizer, ...)``: torch's ``StepLR`` on Lightning, its ``fn(n) -> lr`` on the mirror.
"""

import pytest


@pytest.mark.mirror_differs("MLX optimizers hold the learning rate as a float32 mx.array: 0.1 * 0.1 reads back as "
                            "0.0099999998, not the float 0.1 * 0.1 the assertion compares with")
def test_optimizer_with_scheduling(pl, tmp_path):
    """test_optimizers.py::test_optimizer_with_scheduling: learning rate scheduling works."""
    model = pl.BoringModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_val_batches=0.1, limit_train_batches=0.2, val_check_interval=0.5
    )
    trainer.fit(model)

    init_lr = 0.1
    adjusted_lr = [pl.lr_of(opt) for opt in trainer.optimizers]

    assert len(trainer.lr_scheduler_configs) == 1
    assert all(a == adjusted_lr[0] for a in adjusted_lr)
    assert init_lr * 0.1 == adjusted_lr[0]


def test_configure_optimizer_from_dict(pl, tmp_path):
    """test_optimizers.py::test_configure_optimizer_from_dict: `configure_optimizers` may return a dict with only
    the `optimizer` key."""

    class TestModel(pl.BoringModel):
        def configure_optimizers(self):
            return {"optimizer": pl.sgd(self, lr=1e-03)}

    model = TestModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True)
    trainer.fit(model)


@pytest.mark.parametrize("fn", ["validate", "test", "predict"])
def test_init_optimizers_during_evaluation_and_prediction(pl, tmp_path, fn):
    """test_optimizers.py::test_init_optimizers_during_evaluation_and_prediction: no optimizers and no schedulers
    during evaluation and prediction."""

    class TestModel(pl.BoringModel):
        def configure_optimizers(self):
            optimizer1 = pl.adam(self, lr=0.1)
            optimizer2 = pl.adam(self, lr=0.1)
            lr_scheduler1 = pl.step_lr(optimizer1, step_size=1)
            lr_scheduler2 = pl.step_lr(optimizer2, step_size=1)
            return [optimizer1, optimizer2], [lr_scheduler1, lr_scheduler2]

    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=2)
    train_fn = getattr(trainer, fn)
    train_fn(TestModel(), datamodule=pl.BoringDataModule(), ckpt_path=None)

    assert len(trainer.lr_scheduler_configs) == 0
    assert len(trainer.optimizers) == 0


def test_unknown_configure_optimizers_raises(pl, tmp_path):
    """test_optimizers.py::test_unknown_configure_optimizers_raises: an unsupported return raises."""
    model = pl.BoringModel()
    model.configure_optimizers = lambda: 1
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True)
    with pytest.raises(pl.MisconfigurationException, match="Unknown configuration for model optimizers"):
        trainer.fit(model)


def test_lr_scheduler_with_unknown_interval_raises(pl, tmp_path):
    """test_optimizers.py::test_lr_scheduler_with_unknown_interval_raises: an unknown interval raises."""
    model = pl.BoringModel()
    optimizer = pl.adam(model)
    model.configure_optimizers = lambda: {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": pl.step_lr(optimizer, 1), "interval": "incorrect_unknown_value"},
    }
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True)
    with pytest.raises(pl.MisconfigurationException, match=r'The "interval" key in lr scheduler dict must be'):
        trainer.fit(model)


def test_lr_scheduler_with_extra_keys_warns(pl, tmp_path):
    """test_optimizers.py::test_lr_scheduler_with_extra_keys_warns: unknown keys of the lr_scheduler dict warn."""
    model = pl.BoringModel()
    optimizer = pl.adam(model)
    model.configure_optimizers = lambda: {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": pl.step_lr(optimizer, 1), "foo": 1, "bar": 2},
    }
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True)
    with pytest.warns(RuntimeWarning, match=r"Found unsupported keys in the lr scheduler dict: \{.+\}"):
        trainer.fit(model)


def test_lr_scheduler_with_no_actual_scheduler_raises(pl, tmp_path):
    """test_optimizers.py::test_lr_scheduler_with_no_actual_scheduler_raises: an lr_scheduler dict without a
    scheduler raises."""
    model = pl.BoringModel()
    model.configure_optimizers = lambda: {"optimizer": pl.adam(model), "lr_scheduler": {}}
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True)
    with pytest.raises(pl.MisconfigurationException, match='The lr scheduler dict must have the key "scheduler"'):
        trainer.fit(model)


def test_invalid_optimizer_dict_raises(pl, tmp_path):
    """test_optimizers.py::test_invalid_optimizer_dict_raises: a list mixing dicts and optimizers raises."""

    class DummyModel(pl.BoringModel):
        def configure_optimizers(self):
            return [{"optimizer": pl.adam(self)}, pl.adam(self)]

    model = DummyModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True)
    with pytest.raises(pl.MisconfigurationException, match="Unknown configuration for model optimizers"):
        trainer.fit(model)


def test_optimizer_config_dict_with_extra_keys_warns(pl, tmp_path):
    """test_optimizers.py::test_optimizer_config_dict_with_extra_keys_warns (through `fit`, where Lightning calls
    `_configure_optimizers`): unknown keys of the optimizer dict warn."""
    model = pl.BoringModel()
    optimizer = pl.adam(model)
    model.configure_optimizers = lambda: {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": pl.step_lr(optimizer, 1)},
        "foo": 1,
        "bar": 2,
    }
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True)
    with pytest.warns(RuntimeWarning, match=r"Found unsupported keys in the optimizer configuration: \{.+\}"):
        trainer.fit(model)


def test_multiple_optimizer_config_dicts_with_extra_keys_warns(pl, tmp_path):
    """test_optimizers.py::test_multiple_optimizer_config_dicts_with_extra_keys_warns (through `fit`, manual
    optimization for the two optimizers): unknown keys of each optimizer dict warn."""
    model = pl.BoringModel()
    model.automatic_optimization = False
    model.training_step = lambda batch, batch_idx: None
    optimizer1 = pl.adam(model, lr=0.01)
    optimizer2 = pl.adam(model, lr=0.01)
    lr_scheduler_config_1 = {"scheduler": pl.step_lr(optimizer1, 1)}
    lr_scheduler_config_2 = {"scheduler": pl.step_lr(optimizer2, 1)}
    model.configure_optimizers = lambda: [
        {"optimizer": optimizer1, "lr_scheduler": lr_scheduler_config_1, "foo": 1, "bar": 2},
        {"optimizer": optimizer2, "lr_scheduler": lr_scheduler_config_2, "foo": 1, "bar": 2},
    ]
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True)
    with pytest.warns(RuntimeWarning, match=r"Found unsupported keys in the optimizer configuration: \{.+\}"):
        trainer.fit(model)


@pytest.mark.parametrize("check_val_every_n_epoch", [1, 2])
def test_lr_scheduler_epoch_step_frequency(pl, check_val_every_n_epoch, tmp_path):
    """test_optimizers.py::test_lr_scheduler_epoch_step_frequency (the scheduler's steps read from the learning
    rate, 0.1 * 0.1**steps, instead of a mock of `StepLR.step`): an epoch scheduler steps once an epoch, with or
    without validation."""
    epochs = 4

    model = pl.BoringModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=2,
        check_val_every_n_epoch=check_val_every_n_epoch,
        max_epochs=epochs,
    )
    trainer.fit(model)
    assert pl.lr_of(trainer.optimizers[0]) == pytest.approx(0.1 * 0.1**epochs)


def test_none_optimizer(pl, tmp_path):
    """test_optimizers.py::test_none_optimizer: `configure_optimizers` returning None trains with no optimizer, with
    Lightning's warning."""
    model = pl.BoringModel()
    model.configure_optimizers = lambda: None
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, limit_val_batches=0.1, limit_train_batches=0.2)
    with pytest.warns(UserWarning, match="will run with no optimizer"):
        trainer.fit(model)
