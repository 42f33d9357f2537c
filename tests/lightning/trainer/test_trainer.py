"""Ported from Lightning's tests/tests_pytorch/trainer/test_trainer.py: the cases about the fit / validate / test /
predict flow, the loop limits, a second fit, should_stop and exceptions (checkpoint, logging, precision, device and
strategy cases are other files' or have no mirror counterpart)."""

import math
from unittest.mock import Mock

import pytest


def test_trainer_error_when_input_not_lightning_module(pl):
    """test_trainer.py::test_trainer_error_when_input_not_lightning_module: the entry points take a
    LightningModule."""
    trainer = pl.Trainer()

    for method in ("fit", "validate", "test", "predict"):
        with pytest.raises(TypeError, match="must be a `LightningModule`.*got `Linear"):
            run_method = getattr(trainer, method)
            run_method(pl.nn.Linear(2, 2))


def test_trainer_max_steps_and_epochs(pl, tmp_path):
    """test_trainer.py::test_trainer_max_steps_and_epochs: the model trains to max_steps or max_epochs."""
    model = pl.BoringModel()
    num_train_samples = math.floor(len(model.train_dataloader()) * 0.5)

    # define less train steps than epochs
    trainer_kwargs = {
        "limit_train_batches": 0.5,
        "default_root_dir": tmp_path,
        "max_epochs": 3,
        "max_steps": num_train_samples + 10,
        "logger": False,
        "enable_model_summary": False,
        "enable_progress_bar": False,
    }
    trainer = pl.Trainer(**trainer_kwargs)
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.global_step == trainer.max_steps, "Model did not stop at max_steps"

    # define less train epochs than steps
    trainer_kwargs["max_epochs"] = 2
    trainer_kwargs["max_steps"] = 3 * 2 * num_train_samples
    trainer = pl.Trainer(**trainer_kwargs)
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.global_step == num_train_samples * trainer.max_epochs
    assert trainer.current_epoch == trainer.max_epochs, "Model did not stop at max_epochs"

    # if max_steps is positive and max_epochs is negative, use max_steps
    trainer_kwargs["max_epochs"] = -1
    trainer_kwargs["max_steps"] = 3
    trainer = pl.Trainer(**trainer_kwargs)
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.global_step == 3


@pytest.mark.parametrize(
    ("max_epochs", "max_steps", "incorrect_variable"),
    [
        (-100, -1, "max_epochs"),
        (1, -2, "max_steps"),
    ],
)
def test_trainer_max_steps_and_epochs_validation(pl, max_epochs, max_steps, incorrect_variable):
    """test_trainer.py::test_trainer_max_steps_and_epochs_validation: max_epochs/max_steps below -1 raise."""
    with pytest.raises(
        pl.MisconfigurationException,
        match=f"`{incorrect_variable}` must be a non-negative integer or -1",
    ):
        pl.Trainer(max_epochs=max_epochs, max_steps=max_steps)


@pytest.mark.parametrize(
    ("max_epochs", "max_steps", "is_done", "correct_trainer_epochs"),
    [
        (None, -1, False, None),
        (-1, -1, False, -1),
        (5, -1, False, 5),
        (-1, 10, False, -1),
        (None, 0, True, None),
        (0, -1, True, 0),
        (-1, 0, True, -1),
    ],
)
def test_trainer_max_steps_and_epochs_fit_loop_done(pl, max_epochs, max_steps, is_done, correct_trainer_epochs):
    """test_trainer.py::test_trainer_max_steps_and_epochs_fit_loop_done: the limits as given, and whether the fit
    loop is done before it starts."""
    trainer = pl.Trainer(max_epochs=max_epochs, max_steps=max_steps)

    assert trainer.max_epochs == correct_trainer_epochs
    assert trainer.max_steps == max_steps

    if isinstance(correct_trainer_epochs, int):
        assert trainer.fit_loop.done is is_done

    # Make sure there is no timer
    timer_callbacks = [c for c in trainer.callbacks if isinstance(c, pl.callbacks.Timer)]
    assert len(timer_callbacks) == 0


def test_trainer_min_steps_and_epochs(pl, tmp_path):
    """test_trainer.py::test_trainer_min_steps_and_epochs: the model trains for at least min_steps
    (``limit_val_batches=1`` added: its 16 validations an epoch of 64 batches each cost 20 s and are not what it
    checks)."""
    num_train_samples = math.floor(len(pl.BoringModel().train_dataloader()) * 0.5)

    class CustomModel(pl.BoringModel):
        def training_step(self, *args, **kwargs):
            # try to force stop right after first step
            if self.global_step > 0:
                self.trainer.should_step = True

            return super().training_step(*args, **kwargs)

    model = CustomModel()

    trainer_kwargs = {
        "limit_train_batches": 0.5,
        "default_root_dir": tmp_path,
        "val_check_interval": 2,
        "limit_val_batches": 1,
        "min_epochs": 1,
        "max_epochs": 7,
        # define less min steps than 1 epoch
        "min_steps": num_train_samples // 2,
        "logger": False,
        "enable_model_summary": False,
        "enable_progress_bar": False,
    }
    trainer = pl.Trainer(**trainer_kwargs)
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.current_epoch > 0
    assert trainer.global_step >= num_train_samples, "Model did not train for at least min_epochs"

    # define less epochs than min_steps
    trainer_kwargs["min_steps"] = math.floor(num_train_samples * 1.5)
    trainer = pl.Trainer(**trainer_kwargs)
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.current_epoch > 0
    assert trainer.global_step >= math.floor(num_train_samples * 1.5), "Model did not train for at least min_steps"


def test_trainer_max_steps_accumulate_batches(pl, tmp_path):
    """test_trainer.py::test_trainer_max_steps_accumulate_batches: max_steps counts optimizer steps."""
    model = pl.BoringModel()
    num_train_samples = math.floor(len(model.train_dataloader()) * 0.5)

    # define less train steps than epochs
    trainer = pl.Trainer(
        limit_train_batches=0.5,
        default_root_dir=tmp_path,
        max_steps=num_train_samples + 10,
        accumulate_grad_batches=10,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.global_step == trainer.max_steps, "Model did not stop at max_steps"


def test_disabled_training(pl, tmp_path):
    """test_trainer.py::test_disabled_training: limit_train_batches=0 turns training off unless fast_dev_run (the
    weights compared as numpy arrays)."""

    class CurrentModel(pl.BoringModel):
        training_step_invoked = False

        def training_step(self, *args, **kwargs):
            self.training_step_invoked = True
            return super().training_step(*args, **kwargs)

    model = CurrentModel()

    trainer_options = {
        "default_root_dir": tmp_path,
        "enable_progress_bar": False,
        "max_epochs": 2,
        "limit_train_batches": 0.0,
        "limit_val_batches": 0.2,
        "fast_dev_run": False,
    }

    before_state_dict = pl.params(model)

    trainer = pl.Trainer(**trainer_options)
    trainer.fit(model)

    after_state_dict = pl.params(model)

    for key in before_state_dict:
        assert pl.np.array_equal(before_state_dict[key], after_state_dict[key])

    # check that limit_train_batches=0 turns off training
    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.current_epoch == 0
    assert not model.training_step_invoked, "`training_step` should not run when `limit_train_batches=0`"

    # check that limit_train_batches has no influence when fast_dev_run is turned on
    model = CurrentModel()
    trainer_options.update(fast_dev_run=True)
    before_state_dict = pl.params(model)

    trainer = pl.Trainer(**trainer_options)
    trainer.fit(model)

    after_state_dict = pl.params(model)

    for key in before_state_dict:
        assert not pl.np.array_equal(before_state_dict[key], after_state_dict[key])

    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.current_epoch == 1
    assert model.training_step_invoked, "did not run `training_step` with `fast_dev_run=True`"


def test_disabled_validation(pl, tmp_path):
    """test_trainer.py::test_disabled_validation: limit_val_batches=0 turns validation off unless fast_dev_run."""

    class CurrentModel(pl.BoringModel):
        validation_step_invoked = False

        def validation_step(self, *args, **kwargs):
            self.validation_step_invoked = True
            return super().validation_step(*args, **kwargs)

    model = CurrentModel()

    trainer_options = {
        "default_root_dir": tmp_path,
        "enable_progress_bar": False,
        "max_epochs": 2,
        "limit_train_batches": 0.4,
        "limit_val_batches": 0.0,
        "fast_dev_run": False,
    }

    trainer = pl.Trainer(**trainer_options)
    trainer.fit(model)

    # check that limit_val_batches=0 turns off validation
    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.current_epoch == 2
    assert not model.validation_step_invoked, "`validation_step` should not run when `limit_val_batches=0`"

    # check that limit_val_batches has no influence when fast_dev_run is turned on
    model = CurrentModel()
    trainer_options.update(fast_dev_run=True)
    trainer = pl.Trainer(**trainer_options)
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert trainer.current_epoch == 1
    assert model.validation_step_invoked, "did not run `validation_step` with `fast_dev_run=True`"


def test_on_exception_hook(pl, tmp_path):
    """test_trainer.py::test_on_exception_hook: on_exception sees the exception, the trainer is interrupted."""
    model = pl.BoringModel()

    class InterruptCallback(pl.Callback):
        def __init__(self):
            super().__init__()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            raise KeyboardInterrupt

        def on_test_start(self, trainer, pl_module):
            raise pl.MisconfigurationException

    class HandleInterruptCallback(pl.Callback):
        def __init__(self):
            super().__init__()
            self.exception = None

        def on_exception(self, trainer, pl_module, exception):
            self.exception = exception

    interrupt_callback = InterruptCallback()
    handle_interrupt_callback = HandleInterruptCallback()

    trainer = pl.Trainer(
        callbacks=[interrupt_callback, handle_interrupt_callback],
        max_epochs=1,
        limit_val_batches=0.1,
        limit_train_batches=0.2,
        enable_progress_bar=False,
        logger=False,
        default_root_dir=tmp_path,
    )
    assert not trainer.interrupted
    assert handle_interrupt_callback.exception is None
    with pytest.raises(SystemExit):
        trainer.fit(model)
    assert trainer.interrupted
    assert isinstance(handle_interrupt_callback.exception, KeyboardInterrupt)
    with pytest.raises(pl.MisconfigurationException):
        trainer.test(model)
    assert trainer.interrupted
    assert isinstance(handle_interrupt_callback.exception, pl.MisconfigurationException)


@pytest.mark.parametrize("stage", ["fit", "validate", "test"])
def test_trainer_setup_call(pl, tmp_path, stage):
    """test_trainer.py::test_trainer_setup_call: setup gets the entry point's stage."""

    class CurrentModel(pl.BoringModel):
        def setup(self, stage):
            self.stage = stage

    class CurrentCallback(pl.Callback):
        def setup(self, trainer, model, stage):
            assert model is not None
            self.stage = stage

    model = CurrentModel()
    callback = CurrentCallback()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, enable_checkpointing=False, callbacks=[callback])

    if stage == "fit":
        trainer.fit(model)
    elif stage == "validate":
        trainer.validate(model)
    else:
        trainer.test(model)

    assert callback.stage == stage
    assert model.stage == stage


@pytest.mark.parametrize(("max_steps", "max_epochs", "global_step"), [(10, 5, 10), (20, None, 20)])
def test_repeated_fit_calls_with_max_epochs_and_steps(pl, tmp_path, max_steps, max_epochs, global_step):
    """test_trainer.py::test_repeated_fit_calls_with_max_epochs_and_steps: a second fit on the same trainer goes on
    from the first, so a reached limit trains nothing more."""
    dataset_len = 200
    batch_size = 10

    train_data = pl.DataLoader(pl.RandomDataset(32, dataset_len), batch_size=batch_size)

    model = pl.BoringModel()

    trainer = pl.Trainer(default_root_dir=tmp_path, max_steps=max_steps, max_epochs=max_epochs)
    trainer.fit(model, train_data)
    assert trainer.global_step == global_step
    trainer.fit(model, train_data)
    assert trainer.global_step == global_step


def test_check_val_every_n_epoch_exception(pl, tmp_path):
    """test_trainer.py::test_check_val_every_n_epoch_exception: a float check_val_every_n_epoch raises."""
    with pytest.raises(pl.MisconfigurationException, match="should be an integer."):
        pl.Trainer(default_root_dir=tmp_path, max_epochs=1, check_val_every_n_epoch=1.2)


def test_model_in_correct_mode_during_stages(pl, tmp_path):
    """test_trainer.py::test_model_in_correct_mode_during_stages: train mode in training, eval mode in the others
    (the single-device case)."""

    class TrainerStagesModel(pl.BoringModel):
        def on_train_start(self) -> None:
            assert self.trainer.model.training
            assert self.training

        def on_validation_start(self) -> None:
            assert not self.trainer.model.training
            assert not self.training

        def on_test_start(self) -> None:
            assert not self.trainer.model.training
            assert not self.training

        def on_predict_start(self) -> None:
            assert not self.trainer.model.training
            assert not self.training

    model = TrainerStagesModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, fast_dev_run=True)
    trainer.fit(model)
    trainer.validate(model)
    trainer.test(model)
    trainer.predict(model, model.val_dataloader())


def test_module_current_fx_attributes_reset(pl, tmp_path):
    """test_trainer.py::test_module_current_fx_attributes_reset: no hook name is left on the module after a run."""
    model = pl.BoringModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=1, enable_checkpointing=False, logger=False)

    trainer.fit(model)
    assert model._current_fx_name is None

    trainer.test(model)
    assert model._current_fx_name is None


@pytest.mark.parametrize("fn", ["validate", "test", "predict"])
def test_exception_when_lightning_module_is_not_set_on_trainer(pl, fn):
    """test_trainer.py::test_exception_when_lightning_module_is_not_set_on_trainer: no module, no run."""
    trainer = pl.Trainer()
    trainer_fn = getattr(trainer, fn)
    with pytest.raises(TypeError, match=rf"{fn}\(\)` requires a `LightningModule"):
        trainer_fn()


def test_error_handling_all_stages(pl, tmp_path):
    """test_trainer.py::test_error_handling_all_stages: an error in any stage reaches on_exception once (the
    single-process case)."""

    class TrainerStagesErrorsModel(pl.BoringModel):
        def on_train_start(self) -> None:
            raise Exception("Error during train")

        def on_validation_start(self) -> None:
            raise Exception("Error during validation")

        def on_test_start(self) -> None:
            raise Exception("Error during test")

        def on_predict_start(self) -> None:
            raise Exception("Error during predict")

    class ExceptionCounter(pl.Callback):
        exceptions = 0

        def on_exception(self, *_):
            self.exceptions += 1

    model = TrainerStagesErrorsModel()
    counter = ExceptionCounter()

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        strategy="auto",
        devices=1,
        callbacks=counter,
        fast_dev_run=True,
    )

    with pytest.raises(Exception, match=r"Error during train"):
        trainer.fit(model)
    assert counter.exceptions == 1

    with pytest.raises(Exception, match=r"Error during validation"):
        trainer.validate(model)
    assert counter.exceptions == 2

    with pytest.raises(Exception, match=r"Error during test"):
        trainer.test(model)
    assert counter.exceptions == 3

    with pytest.raises(Exception, match=r"Error during predict"):
        trainer.predict(model, model.val_dataloader(), return_predictions=False)
    assert counter.exceptions == 4


def test_trainer_metrics_reset_before_each_task(pl, tmp_path):
    """test_trainer.py::test_trainer_metrics_reset_before_each_task: callback, logged and progress bar metrics are
    empty when each entry point starts."""

    class TestMetricRestartCallback(pl.Callback):
        def _make_assertions(self, trainer):
            assert trainer.callback_metrics == {}
            assert trainer.progress_bar_metrics == {}
            assert trainer.logged_metrics == {}

        def on_train_start(self, trainer, *args, **kwargs):
            self._make_assertions(trainer)

        def on_validation_start(self, trainer, *args, **kwargs):
            if trainer.state.fn == "validate":
                self._make_assertions(trainer)

        def on_test_start(self, trainer, *args, **kwargs):
            self._make_assertions(trainer)

        def on_predict_start(self, trainer, *args, **kwargs):
            self._make_assertions(trainer)

    class CustomBoringModel(pl.BoringModel):
        def __init__(self):
            super().__init__()

        def training_step(self, *args, **kwargs):
            self.log("train/metric", 7.0)
            return super().training_step(*args, **kwargs)

        def validation_step(self, *args, **kwargs):
            self.log("val/metric", 14.0)
            return super().validation_step(*args, **kwargs)

        def test_step(self, *args, **kwargs):
            self.log("test/metric", 21.0)
            return super().test_step(*args, **kwargs)

    model = CustomBoringModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=4, callbacks=[TestMetricRestartCallback()])
    trainer.fit(model)
    trainer.validate(model)
    trainer.test(model)
    trainer.predict(model)


def test_trainer_save_checkpoint_no_model_attached(pl):
    """test_trainer.py::test_trainer_save_checkpoint_no_model_attached: nothing to save before a run."""
    trainer = pl.Trainer()
    assert trainer.model is None
    with pytest.raises(AttributeError, match="Saving a checkpoint is only possible if a model is attached"):
        trainer.save_checkpoint("checkpoint" + pl.checkpoint_suffix)


def test_trainer_calls_logger_finalize_on_exception(pl, tmp_path):
    """test_trainer.py::test_trainer_calls_logger_finalize_on_exception: loggers are finalized "failed"."""

    class CustomModel(pl.BoringModel):
        def on_fit_start(self):
            super().on_fit_start()
            raise Exception("logger-finalize")

    model = CustomModel()
    logger = pl.loggers.TensorBoardLogger(save_dir=tmp_path)
    logger.finalize = Mock()
    trainer = pl.Trainer(logger=logger)

    with pytest.raises(Exception, match="logger-finalize"):
        trainer.fit(model)

    logger.finalize.assert_called_once_with("failed")


@pytest.mark.parametrize("exception_type", [KeyboardInterrupt, RuntimeError])
def test_trainer_calls_datamodule_on_exception(pl, exception_type, tmp_path):
    """test_trainer.py::test_trainer_calls_datamodule_on_exception: the datamodule's on_exception sees the
    exception."""
    from contextlib import suppress

    exception = exception_type("Test exception")

    class ExceptionModel(pl.BoringModel):
        def on_fit_start(self):
            raise exception

    datamodule = pl.BoringDataModule()
    datamodule.on_exception = Mock()
    trainer = pl.Trainer(default_root_dir=tmp_path)

    with suppress(Exception, SystemExit):
        trainer.fit(ExceptionModel(), datamodule=datamodule)
    datamodule.on_exception.assert_called_once_with(exception)
