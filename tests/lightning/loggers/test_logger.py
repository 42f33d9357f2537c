"""Ported from Lightning's tests/tests_pytorch/loggers/test_logger.py.

Not ported: test_multiple_loggers_pickle (its ``pickle.loads`` is what the project's source scan,
tests/reliability/test_faults.py, forbids anywhere), test_np_sanitization and test_scan_checkpoints (Lightning's private
helpers)."""

from copy import deepcopy
from typing import Any, Optional
from unittest.mock import patch

import pytest


def custom_logger_class(pl):
    """Lightning's ``CustomLogger``: a user's subclass of ``Logger``."""
    rank_zero_only = pl.module.utilities.rank_zero.rank_zero_only

    class CustomLogger(pl.loggers.Logger):
        def __init__(self, experiment: str = "test", name: str = "name", version: str = "1"):
            super().__init__()
            self._experiment = experiment
            self._name = name
            self._version = version
            self.hparams_logged = None
            self.metrics_logged = {}
            self.finalized = False
            self.after_save_checkpoint_called = False

        @property
        def experiment(self):
            return self._experiment

        @rank_zero_only
        def log_hyperparams(self, params):
            self.hparams_logged = params

        @rank_zero_only
        def log_metrics(self, metrics, step):
            self.metrics_logged = metrics

        @rank_zero_only
        def finalize(self, status):
            self.finalized_status = status

        @property
        def save_dir(self) -> Optional[str]:
            return None

        @property
        def name(self):
            return self._name

        @property
        def version(self):
            return self._version

        def after_save_checkpoint(self, checkpoint_callback):
            self.after_save_checkpoint_called = True

    return CustomLogger


def logging_model(pl):
    class CustomModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("train_loss", loss)
            return {"loss": loss}

    return CustomModel()


def test_custom_logger(pl, tmp_path):
    """test_logger.py::test_custom_logger: a subclass of Logger gets metrics, checkpoints and the final status."""
    logger = custom_logger_class(pl)()
    model = logging_model(pl)
    trainer = pl.Trainer(max_steps=2, log_every_n_steps=1, logger=logger, default_root_dir=tmp_path)
    trainer.fit(model)
    assert trainer.state.status == "finished", f"Training failed with {trainer.state}"
    assert logger.metrics_logged != {}
    assert logger.after_save_checkpoint_called
    assert logger.finalized_status == "success"


def test_multiple_loggers(pl, tmp_path):
    """test_logger.py::test_multiple_loggers."""
    model = logging_model(pl)
    logger1 = custom_logger_class(pl)()
    logger2 = custom_logger_class(pl)()

    trainer = pl.Trainer(max_steps=2, log_every_n_steps=1, logger=[logger1, logger2], default_root_dir=tmp_path)
    trainer.fit(model)
    assert trainer.state.status == "finished", f"Training failed with {trainer.state}"

    assert logger1.hparams_logged is None
    assert logger1.metrics_logged != {}
    assert logger1.finalized_status == "success"

    assert logger2.hparams_logged is None
    assert logger2.metrics_logged != {}
    assert logger2.finalized_status == "success"


def test_adding_step_key(pl, tmp_path):
    """test_logger.py::test_adding_step_key: a logged `step` is the step the loggers get."""

    class CustomTensorBoardLogger(pl.loggers.TensorBoardLogger):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.logged_step = 0

        def log_metrics(self, metrics, step):
            if "val_acc" in metrics:
                assert step == self.logged_step

            super().log_metrics(metrics, step)

    class CustomModel(pl.BoringModel):
        def on_train_epoch_end(self):
            self.logger.logged_step += 1
            self.log_dict({"step": self.logger.logged_step, "train_acc": self.logger.logged_step / 10})

        def on_validation_epoch_end(self):
            self.logger.logged_step += 1
            self.log_dict({"step": self.logger.logged_step, "val_acc": self.logger.logged_step / 10})

    model = CustomModel()
    trainer = pl.Trainer(
        max_epochs=3,
        logger=CustomTensorBoardLogger(save_dir=tmp_path),
        default_root_dir=tmp_path,
        limit_train_batches=0.1,
        limit_val_batches=0.1,
        num_sanity_val_steps=0,
    )
    trainer.fit(model)


def test_dummylogger_noop_method_calls(pl):
    """test_logger.py::test_dummylogger_noop_method_calls."""
    logger = pl.loggers.logger.DummyLogger()
    logger.log_hyperparams("1", 2, three="three")
    logger.log_metrics("1", 2, three="three")


def test_dummlogger_arbitrary_method_calls(pl):
    """test_logger.py::test_dummlogger_arbitrary_method_calls."""
    logger = pl.loggers.logger.DummyLogger()
    assert hasattr(logger, "log_text")
    assert callable(logger.log_text)


def test_dummyexperiment_support_item_assignment(pl):
    """test_logger.py::test_dummyexperiment_support_item_assignment."""
    experiment = pl.loggers.logger.DummyLogger().experiment
    experiment["variable"] = "value"
    assert experiment["variable"] != "value"


@pytest.mark.parametrize("logger", [True, False])
def test_log_hyperparams_being_called(pl, tmp_path, logger):
    """test_logger.py::test_log_hyperparams_being_called: save_hyperparameters(logger=False) keeps them from the
    loggers."""

    class TestModel(pl.BoringModel):
        def __init__(self, param_one, param_two):
            super().__init__()
            self.save_hyperparameters(logger=logger)

    model = TestModel("pytorch", "lightning")
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=0.1,
        limit_val_batches=0.1,
        num_sanity_val_steps=0,
        logger=pl.loggers.TensorBoardLogger(tmp_path),
    )
    with patch.object(pl.loggers.TensorBoardLogger, "log_hyperparams") as log_hyperparams_mock:
        trainer.fit(model)

    if logger:
        log_hyperparams_mock.assert_called()
    else:
        log_hyperparams_mock.assert_not_called()


def test_log_hyperparams_key_collision(pl, tmp_path):
    """test_logger.py::test_log_hyperparams_key_collision: the module's and datamodule's hyper-parameters merge; one
    key with two values raises."""

    class TestModel(pl.BoringModel):
        def __init__(self, hparams: dict[str, Any]) -> None:
            super().__init__()
            self.save_hyperparameters(hparams)

    class TestDataModule(pl.BoringDataModule):
        def __init__(self, hparams: dict[str, Any]) -> None:
            super().__init__()
            self.save_hyperparameters(hparams)

    class _Test: ...

    def trainer():
        return pl.Trainer(
            default_root_dir=tmp_path,
            logger=pl.loggers.TensorBoardLogger(tmp_path),
            max_epochs=1,
            limit_train_batches=0.1,
            limit_val_batches=0.1,
            num_sanity_val_steps=0,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )

    same_params = {1: 1, "2": 2, "three": 3.0, "test": _Test(), "4": pl.tensor(4)}
    model = TestModel(same_params)

    with patch.object(pl.loggers.TensorBoardLogger, "log_hyperparams"):
        fit_trainer = trainer()
        fit_trainer.fit(model)

        obj_params = deepcopy(same_params)
        obj_params["test"] = _Test()
        model = TestModel(same_params)
        fit_trainer.fit(model)

        diff_params = deepcopy(same_params)
        diff_params.update({1: 0, "test": _Test()})
        model = TestModel(same_params)
        dm = TestDataModule(diff_params)
        with pytest.raises(RuntimeError, match="Error while merging hparams"):
            trainer().fit(model, dm)

        tensor_params = deepcopy(same_params)
        tensor_params.update({"4": pl.tensor(3)})
        model = TestModel(same_params)
        dm = TestDataModule(tensor_params)
        with pytest.raises(RuntimeError, match="Error while merging hparams"):
            trainer().fit(model, dm)
