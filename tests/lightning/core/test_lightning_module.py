"""Ported from Lightning's tests/tests_pytorch/core/test_lightning_module.py."""

from unittest.mock import Mock

import pytest


def test_lightning_module_not_abstract(pl):
    """test_lightning_module.py::test_lightning_module_not_abstract: the LightningModule can be instantiated (it is
    not an abstract class)."""
    _ = pl.LightningModule()


def test_property_current_epoch(pl):
    """test_lightning_module.py::test_property_current_epoch: current_epoch is read through the Trainer."""
    model = pl.BoringModel()
    assert model.current_epoch == 0

    trainer = Mock(current_epoch=123)
    model.trainer = trainer
    assert model.current_epoch == 123


def test_property_global_step(pl):
    """test_lightning_module.py::test_property_global_step: global_step is read through the Trainer."""
    model = pl.BoringModel()
    assert model.global_step == 0

    trainer = Mock(global_step=123)
    model.trainer = trainer
    assert model.global_step == 123


def test_property_global_rank(pl):
    """test_lightning_module.py::test_property_global_rank: global_rank is read through the Trainer."""
    model = pl.BoringModel()
    assert model.global_rank == 0

    trainer = Mock(global_rank=123)
    model.trainer = trainer
    assert model.global_rank == 123


def test_property_local_rank(pl):
    """test_lightning_module.py::test_property_local_rank: local_rank is read through the Trainer."""
    model = pl.BoringModel()
    assert model.local_rank == 0

    trainer = Mock(local_rank=123)
    model.trainer = trainer
    assert model.local_rank == 123


def test_property_logger(pl, tmp_path):
    """test_lightning_module.py::test_property_logger: the logger is the Trainer's."""
    model = pl.BoringModel()
    assert model.logger is None

    logger = pl.loggers.TensorBoardLogger(tmp_path)
    trainer = pl.Trainer(logger=logger)
    model.trainer = trainer
    assert model.logger == logger


def test_property_loggers(pl, tmp_path):
    """test_lightning_module.py::test_property_loggers: the loggers are the Trainer's."""
    model = pl.BoringModel()
    assert model.loggers == []

    logger = pl.loggers.TensorBoardLogger(tmp_path)
    trainer = pl.Trainer(logger=logger)
    model.trainer = trainer
    assert model.loggers == [logger]

    logger0 = pl.loggers.TensorBoardLogger(tmp_path)
    logger1 = pl.loggers.TensorBoardLogger(tmp_path)
    trainer = pl.Trainer(logger=[logger0, logger1])
    model.trainer = trainer
    assert model.loggers == [logger0, logger1]


def test_lightning_module_configure_gradient_clipping_different_argument_values(pl, tmp_path):
    """test_lightning_module.py::test_lightning_module_configure_gradient_clipping_different_argument_values:
    clipping arguments in the Trainer and different ones in `configure_gradient_clipping` raise."""

    class TestModel(pl.BoringModel):
        custom_gradient_clip_val = 1e-2

        def configure_gradient_clipping(self, optimizer, gradient_clip_val, gradient_clip_algorithm):
            self.clip_gradients(optimizer, gradient_clip_val=self.custom_gradient_clip_val)

    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=0, gradient_clip_val=1e-4
    )
    with pytest.raises(
        pl.MisconfigurationException,
        match=r"gradient_clip_val=0.0001\)` and have passed `clip_gradients\(gradient_clip_val=0.01",
    ):
        trainer.fit(model)

    class TestModel(pl.BoringModel):
        custom_gradient_clip_algorithm = "foo"

        def configure_gradient_clipping(self, optimizer, gradient_clip_val, gradient_clip_algorithm):
            self.clip_gradients(optimizer, gradient_clip_algorithm=self.custom_gradient_clip_algorithm)

    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        gradient_clip_algorithm="norm",
    )
    with pytest.raises(
        pl.MisconfigurationException,
        match=r"gradient_clip_algorithm='norm'\)` and have passed `clip_gradients\(gradient_clip_algorithm='foo'",
    ):
        trainer.fit(model)


def test_trainer_reference_recursively(pl):
    """test_lightning_module.py::test_trainer_reference_recursively: a module inside a module sees its Trainer."""
    ensemble = pl.LightningModule()
    inner = pl.LightningModule()
    ensemble.inner = inner

    assert inner._trainer is None
    with pytest.raises(RuntimeError, match="attached to a `Trainer"):
        _ = ensemble.trainer

    trainer = Mock()
    ensemble.trainer = trainer
    # references match
    assert ensemble.trainer is inner.trainer
