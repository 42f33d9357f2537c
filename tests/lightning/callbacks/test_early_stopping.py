"""Ported from Lightning's tests/tests_pytorch/callbacks/test_early_stopping.py."""

import copy
import math
import sys
from typing import Optional
from unittest import mock
from unittest.mock import Mock

import pytest


def early_stopping_module(pl):
    """The module EarlyStopping is defined in (its ``log``, ``EarlyStoppingReason``)."""
    return sys.modules[pl.callbacks.EarlyStopping.__module__]


def test_early_stopping_state_key(pl):
    """test_early_stopping.py::test_early_stopping_state_key: the state key names monitor and mode."""
    early_stopping = pl.callbacks.EarlyStopping(monitor="val_loss")
    assert early_stopping.state_key == "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"


@pytest.mark.parametrize(
    ("loss_values", "patience", "expected_stop_epoch"),
    [([6, 5, 5, 5, 5, 5], 3, 4), ([6, 5, 4, 4, 3, 3], 1, 3), ([6, 5, 6, 5, 5, 5], 3, 4)],
)
def test_early_stopping_patience(pl, tmp_path, loss_values: list, patience: int, expected_stop_epoch: int):
    """test_early_stopping.py::test_early_stopping_patience: no stop before patience is exhausted."""

    class ModelOverrideValidationReturn(pl.BoringModel):
        validation_return_values = pl.tensor(loss_values)

        def on_validation_epoch_end(self):
            loss = self.validation_return_values[self.current_epoch]
            self.log("test_val_loss", loss)

    model = ModelOverrideValidationReturn()
    early_stop_callback = pl.callbacks.EarlyStopping(monitor="test_val_loss", patience=patience, verbose=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[early_stop_callback],
        num_sanity_val_steps=0,
        max_epochs=10,
        enable_progress_bar=False,
    )
    trainer.fit(model)
    assert trainer.current_epoch - 1 == expected_stop_epoch


@pytest.mark.parametrize("validation_step_none", [True, False])
@pytest.mark.parametrize(
    ("loss_values", "patience", "expected_stop_epoch"),
    [([6, 5, 5, 5, 5, 5], 3, 4), ([6, 5, 4, 4, 3, 3], 1, 3), ([6, 5, 6, 5, 5, 5], 3, 4)],
)
def test_early_stopping_patience_train(
    pl, tmp_path, validation_step_none: bool, loss_values: list, patience: int, expected_stop_epoch: int
):
    """test_early_stopping.py::test_early_stopping_patience_train: the same on a training metric."""

    class ModelOverrideTrainReturn(pl.BoringModel):
        train_return_values = pl.tensor(loss_values)

        def on_train_epoch_end(self):
            loss = self.train_return_values[self.current_epoch]
            self.log("train_loss", loss)

    model = ModelOverrideTrainReturn()

    if validation_step_none:
        model.validation_step = None

    early_stop_callback = pl.callbacks.EarlyStopping(
        monitor="train_loss", patience=patience, verbose=True, check_on_train_epoch_end=True
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[early_stop_callback],
        num_sanity_val_steps=0,
        max_epochs=10,
        enable_progress_bar=False,
    )
    trainer.fit(model)
    assert trainer.current_epoch - 1 == expected_stop_epoch


@pytest.mark.parametrize(
    ("stopping_threshold", "divergence_threshold", "losses", "expected_epoch"),
    [
        (None, None, [8, 4, 2, 3, 4, 5, 8, 10], 5),
        (2.9, None, [9, 8, 7, 6, 5, 6, 4, 3, 2, 1], 8),
        (None, 15.9, [9, 4, 2, 16, 32, 64], 3),
    ],
)
def test_early_stopping_thresholds(pl, tmp_path, stopping_threshold, divergence_threshold, losses, expected_epoch):
    """test_early_stopping.py::test_early_stopping_thresholds: the stopping and divergence thresholds stop."""

    class CurrentModel(pl.BoringModel):
        def on_validation_epoch_end(self):
            val_loss = losses[self.current_epoch]
            self.log("abc", val_loss)

    model = CurrentModel()
    early_stopping = pl.callbacks.EarlyStopping(
        monitor="abc", stopping_threshold=stopping_threshold, divergence_threshold=divergence_threshold
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[early_stopping],
        limit_train_batches=0.2,
        limit_val_batches=0.2,
        max_epochs=20,
    )
    trainer.fit(model)
    assert trainer.current_epoch - 1 == expected_epoch, "early_stopping failed"


@pytest.mark.parametrize("stop_value", [math.inf, math.nan])
def test_early_stopping_on_non_finite_monitor(pl, tmp_path, stop_value):
    """test_early_stopping.py::test_early_stopping_on_non_finite_monitor: an inf or NaN metric stops."""
    losses = [4, 3, pl.tensor(stop_value), 2, 1]
    expected_stop_epoch = 2

    class CurrentModel(pl.BoringModel):
        def on_validation_epoch_end(self):
            val_loss = losses[self.current_epoch]
            self.log("val_loss", val_loss)

    model = CurrentModel()
    early_stopping = pl.callbacks.EarlyStopping(monitor="val_loss", check_finite=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[early_stopping],
        limit_train_batches=0.2,
        limit_val_batches=0.2,
        max_epochs=10,
    )
    trainer.fit(model)
    assert trainer.current_epoch - 1 == expected_stop_epoch
    assert early_stopping.stopped_epoch == expected_stop_epoch


@pytest.mark.parametrize(
    ("limit_train_batches", "min_epochs", "min_steps", "stop_step"),
    [
        (3, 0, 10, 10),
        (5, 0, 10, 10),
        (3, 2, 0, 6),
        (5, 2, 0, 10),
        (3, 1, 10, 10),
        (5, 1, 10, 10),
        (3, 3, 10, 10),
        (5, 3, 10, 15),
    ],
)
def test_min_epochs_min_steps_global_step(pl, tmp_path, limit_train_batches, min_epochs, min_steps, stop_step):
    """test_early_stopping.py::test_min_epochs_min_steps_global_step: a stop waits for min_epochs and min_steps,
    then for the end of the epoch."""
    if min_steps:
        assert limit_train_batches < min_steps

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            self.log("foo", batch_idx)
            return super().training_step(batch, batch_idx)

    es_callback = pl.callbacks.EarlyStopping("foo")
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=es_callback,
        limit_val_batches=0,
        limit_train_batches=limit_train_batches,
        min_epochs=min_epochs,
        min_steps=min_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = TestModel()

    expected_epochs = max(math.ceil(min_steps / limit_train_batches), min_epochs)
    # trigger early stopping directly after the first epoch
    side_effect = [(True, "")] * expected_epochs
    with mock.patch.object(es_callback, "_evaluate_stopping_criteria", side_effect=side_effect):
        trainer.fit(model)

    assert trainer.should_stop
    # epochs continue until min steps are reached
    assert trainer.current_epoch == expected_epochs
    # steps continue until min steps are reached AND the epoch is exhausted
    assert trainer.global_step == stop_step


def test_early_stopping_mode_options(pl):
    """test_early_stopping.py::test_early_stopping_mode_options: an unknown mode is refused."""
    with pytest.raises(pl.MisconfigurationException, match="`mode` can be .* got unknown_option"):
        pl.callbacks.EarlyStopping(monitor="foo", mode="unknown_option")


def early_stopping_model(pl):
    """Lightning's ``EarlyStoppingModel``: ``abc`` falls then rises, ``cba`` stays 0; the run must end at the
    expected epoch."""

    class EarlyStoppingModel(pl.BoringModel):
        def __init__(self, expected_end_epoch: int, early_stop_on_train: bool,
                     dist_diverge_epoch: Optional[int] = None):
            super().__init__()
            self.expected_end_epoch = expected_end_epoch
            self.early_stop_on_train = early_stop_on_train
            self.dist_diverge_epoch = dist_diverge_epoch

        def _dist_diverge(self):
            should_diverge = (
                self.dist_diverge_epoch and self.current_epoch >= self.dist_diverge_epoch
                and self.trainer.global_rank == 0
            )
            return 10 if should_diverge else None

        def _epoch_end(self) -> None:
            losses = [8, 4, 2, 3, 4, 5, 8, 10]
            loss = self._dist_diverge() or losses[self.current_epoch]
            self.log("abc", pl.tensor(loss))
            self.log("cba", pl.tensor(0))

        def on_train_epoch_end(self):
            if not self.early_stop_on_train:
                return
            self._epoch_end()

        def on_validation_epoch_end(self):
            if self.early_stop_on_train:
                return
            self._epoch_end()

        def on_train_end(self) -> None:
            assert self.trainer.current_epoch - 1 == self.expected_end_epoch, "Early Stopping Failed"

    return EarlyStoppingModel


_ES_CHECK = {"check_on_train_epoch_end": True}
_ES_CHECK_P3 = {"patience": 3, "check_on_train_epoch_end": True}


@pytest.mark.parametrize(
    ("callbacks", "expected_stop_epoch", "check_on_train_epoch_end"),
    [
        ([("abc", {}), ("cba", {"patience": 3})], 3, False),
        ([("cba", {"patience": 3}), ("abc", {})], 3, False),
        ([("abc", _ES_CHECK), ("cba", _ES_CHECK_P3)], 3, True),
        ([("cba", _ES_CHECK_P3), ("abc", _ES_CHECK)], 3, True),
    ],
)
def test_multiple_early_stopping_callbacks(pl, tmp_path, callbacks, expected_stop_epoch: int,
                                           check_on_train_epoch_end: bool):
    """test_early_stopping.py::test_multiple_early_stopping_callbacks: with several, any one stops the run (the
    single-device cases)."""
    model = early_stopping_model(pl)(expected_stop_epoch, check_on_train_epoch_end)

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[pl.callbacks.EarlyStopping(monitor, **kwargs) for monitor, kwargs in callbacks],
        limit_train_batches=0.1,
        limit_val_batches=0.1,
        max_epochs=20,
        strategy="auto",
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model)


@pytest.mark.parametrize(
    "case",
    {
        "val_check_interval": {"val_check_interval": 0.3, "limit_train_batches": 10, "max_epochs": 10},
        "check_val_every_n_epoch": {"check_val_every_n_epoch": 2, "max_epochs": 5},
    }.items(),
)
def test_check_on_train_epoch_end_smart_handling(pl, tmp_path, case):
    """test_early_stopping.py::test_check_on_train_epoch_end_smart_handling: with validation not once an epoch,
    the check follows validation."""

    class TestModel(pl.BoringModel):
        def validation_step(self, batch, batch_idx):
            self.log("foo", 1)
            return super().validation_step(batch, batch_idx)

    case, kwargs = case
    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_val_batches=1,
        callbacks=pl.callbacks.EarlyStopping(monitor="foo"),
        enable_progress_bar=False,
        **kwargs,
    )

    side_effect = [(False, "A"), (True, "B")]
    with mock.patch.object(
        pl.callbacks.EarlyStopping, "_evaluate_stopping_criteria", side_effect=side_effect
    ) as es_mock:
        trainer.fit(model)

    assert es_mock.call_count == len(side_effect)
    if case == "val_check_interval":
        assert trainer.global_step == len(side_effect) * int(trainer.limit_train_batches * trainer.val_check_interval)
    else:
        assert trainer.current_epoch == len(side_effect) * trainer.check_val_every_n_epoch


def test_early_stopping_squeezes(pl):
    """test_early_stopping.py::test_early_stopping_squeezes: the monitored value is squeezed to a scalar."""
    early_stopping = pl.callbacks.EarlyStopping(monitor="foo")
    trainer = pl.Trainer()
    trainer.callback_metrics["foo"] = pl.tensor([[[0]]])

    with mock.patch.object(
        pl.callbacks.EarlyStopping, "_evaluate_stopping_criteria", return_value=(False, "")
    ) as es_mock:
        early_stopping._run_early_stopping_check(trainer)

    es_mock.assert_called_once_with(pl.tensor(0))


@pytest.mark.parametrize(
    ("log_rank_zero_only", "world_size", "global_rank", "expected_log"),
    [
        (False, 1, 0, "bar"),
        (False, 2, 0, "[rank: 0] bar"),
        (False, 2, 1, "[rank: 1] bar"),
        (True, 1, 0, "bar"),
        (True, 2, 0, "[rank: 0] bar"),
        (True, 2, 1, None),
    ],
)
def test_early_stopping_log_info(pl, log_rank_zero_only, world_size, global_rank, expected_log):
    """test_early_stopping.py::test_early_stopping_log_info: the decision logged at INFO, rank-prefixed with
    several processes, rank zero's only with log_rank_zero_only."""
    trainer = Mock(global_rank=global_rank, world_size=world_size)

    with mock.patch.object(early_stopping_module(pl).log, "info") as log_mock:
        pl.callbacks.EarlyStopping._log_info(trainer, "bar", log_rank_zero_only)

    # check log.info() was called or not with expected arg
    if expected_log:
        log_mock.assert_called_once_with(expected_log)
    else:
        log_mock.assert_not_called()


def reason_models(pl):
    """Lightning's models for ``test_early_stopping_reasons``, by name."""

    class ModelWithHighLoss(pl.BoringModel):
        def on_validation_epoch_end(self):
            self.log("val_loss", 10.0)

    class ModelWithDecreasingLoss(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.epoch_losses = [5.0, 3.0, 1.0, 0.5]

        def on_validation_epoch_end(self):
            loss = self.epoch_losses[self.current_epoch] if self.current_epoch < len(self.epoch_losses) else 0.1
            self.log("val_loss", loss)

    class ModelWithIncreasingLoss(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.epoch_losses = [1.0, 2.0, 5.0, 10.0]

        def on_validation_epoch_end(self):
            loss = self.epoch_losses[self.current_epoch] if self.current_epoch < len(self.epoch_losses) else 15.0
            self.log("val_loss", loss)

    class ModelWithNaNLoss(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.epoch_losses = [1.0, 0.5, float("nan")]

        def on_validation_epoch_end(self):
            loss = (self.epoch_losses[self.current_epoch] if self.current_epoch < len(self.epoch_losses)
                    else float("nan"))
            self.log("val_loss", loss)

    class ModelWithImprovingLoss(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.epoch_losses = [5.0, 4.0, 3.0, 2.0, 1.0]

        def on_validation_epoch_end(self):
            loss = self.epoch_losses[self.current_epoch] if self.current_epoch < len(self.epoch_losses) else 0.1
            self.log("val_loss", loss)

    return {cls.__name__: cls for cls in (ModelWithHighLoss, ModelWithDecreasingLoss, ModelWithIncreasingLoss,
                                          ModelWithNaNLoss, ModelWithImprovingLoss)}


@pytest.mark.parametrize(
    (
        "model_cls",
        "early_stopping_kwargs",
        "trainer_kwargs",
        "expected_reason",
        "reason_message_substr",
        "should_stop",
        "state_dict_override",
    ),
    [
        ("ModelWithHighLoss", {"monitor": "val_loss", "patience": 2, "verbose": True},
         {"max_epochs": 10, "enable_progress_bar": False}, "PATIENCE_EXHAUSTED", "did not improve", True, None),
        ("ModelWithDecreasingLoss", {"monitor": "val_loss", "stopping_threshold": 0.6, "mode": "min", "verbose": True},
         {"max_epochs": 10, "enable_progress_bar": False}, "STOPPING_THRESHOLD", "Stopping threshold reached", True,
         None),
        ("ModelWithIncreasingLoss", {"monitor": "val_loss", "divergence_threshold": 8.0, "mode": "min",
                                     "verbose": True},
         {"max_epochs": 10, "enable_progress_bar": False}, "DIVERGENCE_THRESHOLD", "Divergence threshold reached",
         True, None),
        ("ModelWithNaNLoss", {"monitor": "val_loss", "check_finite": True, "verbose": True},
         {"max_epochs": 10, "enable_progress_bar": False}, "NON_FINITE_METRIC", "is not finite", True, None),
        ("ModelWithImprovingLoss", {"monitor": "val_loss", "patience": 3, "verbose": True},
         {"max_epochs": 3, "enable_progress_bar": False}, "NOT_STOPPED", None, False, None),
        # State persistence
        (None, {"monitor": "val_loss", "patience": 3}, {}, "PATIENCE_EXHAUSTED", "Test message", None,
         {"stopping_reason": "PATIENCE_EXHAUSTED", "stopping_reason_message": "Test message"}),
        # Backward compatibility (old state dict)
        (None, {"monitor": "val_loss", "patience": 3}, {}, "NOT_STOPPED", None, None,
         {"wait_count": 2, "stopped_epoch": 5, "best_score": 0.5, "patience": 3}),
    ],
)
def test_early_stopping_reasons(pl, tmp_path, model_cls, early_stopping_kwargs, trainer_kwargs, expected_reason,
                                reason_message_substr, should_stop, state_dict_override):
    """test_early_stopping.py::test_early_stopping_reasons: stopping_reason and its message for each way to stop,
    kept in the state, and an old state without them."""
    EarlyStopping = pl.callbacks.EarlyStopping
    EarlyStoppingReason = early_stopping_module(pl).EarlyStoppingReason
    expected_reason = EarlyStoppingReason[expected_reason]
    if state_dict_override is not None:
        state_dict_override = dict(state_dict_override)
        if "stopping_reason" in state_dict_override:
            state_dict_override["stopping_reason"] = EarlyStoppingReason[state_dict_override["stopping_reason"]]
        else:
            state_dict_override["best_score"] = pl.tensor(state_dict_override["best_score"])
        early_stopping = EarlyStopping(**early_stopping_kwargs)
        if "stopping_reason" in state_dict_override:
            # State persistence test
            early_stopping.stopping_reason = state_dict_override["stopping_reason"]
            early_stopping.stopping_reason_message = state_dict_override["stopping_reason_message"]
            state_dict = early_stopping.state_dict()
            new_early_stopping = EarlyStopping(**early_stopping_kwargs)
            new_early_stopping.load_state_dict(state_dict)
            assert new_early_stopping.stopping_reason == expected_reason
            assert new_early_stopping.stopping_reason_message == reason_message_substr
        else:
            # Backward compatibility test
            early_stopping.load_state_dict(copy.deepcopy(state_dict_override))
            assert early_stopping.stopping_reason == expected_reason
            assert early_stopping.stopping_reason_message is None
            assert early_stopping.wait_count == state_dict_override["wait_count"]
            assert early_stopping.stopped_epoch == state_dict_override["stopped_epoch"]
        return

    # All other tests
    model = reason_models(pl)[model_cls]()
    early_stopping = EarlyStopping(**early_stopping_kwargs)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[early_stopping],
        **trainer_kwargs,
    )
    trainer.fit(model)

    assert early_stopping.stopping_reason == expected_reason
    if reason_message_substr is not None:
        assert early_stopping.stopping_reason_message is not None
        assert reason_message_substr in early_stopping.stopping_reason_message
    else:
        assert early_stopping.stopping_reason_message is None
    if should_stop is not None:
        if should_stop:
            assert early_stopping.stopped_epoch > 0
        else:
            assert early_stopping.stopped_epoch == 0
