"""Ported from Lightning's tests/tests_pytorch/trainer/logging_/test_train_loop_logging.py."""

import collections
import itertools
from re import escape
from unittest import mock
from unittest.mock import call

import numpy as np
import pytest


def test__training_step__log(pl, tmp_path):
    """test_train_loop_logging.py::test__training_step__log: only training_step logs; every on_step/on_epoch/prog_bar
    combination lands in its views."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            loss = out["loss"]
            self.log("default", loss)
            self.log("l_s", loss, on_step=True, on_epoch=False, prog_bar=False, logger=True)
            self.log("l_e", loss, on_step=False, on_epoch=True, prog_bar=False, logger=True)
            self.log("l_se", loss, on_step=True, on_epoch=True, prog_bar=False, logger=True)
            self.log("p_s", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)
            self.log("p_e", loss, on_step=False, on_epoch=True, prog_bar=True, logger=False)
            self.log("p_se", loss, on_step=True, on_epoch=True, prog_bar=True, logger=False)
            return loss

    model = TestModel()
    model.val_dataloader = None

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=2,
        max_epochs=2,
        log_every_n_steps=1,
        enable_model_summary=False,
        callbacks=[pl.callbacks.ModelCheckpoint(monitor="l_se")],
    )
    trainer.fit(model)

    logged_metrics = set(trainer.logged_metrics)
    assert logged_metrics == {"default", "l_e", "l_s", "l_se_step", "l_se_epoch"}

    pbar_metrics = set(trainer.progress_bar_metrics)
    assert pbar_metrics == {"p_e", "p_s", "p_se_step", "p_se_epoch"}

    assert set(trainer.callback_metrics) == (logged_metrics | pbar_metrics | {"p_se", "l_se"})
    assert all(isinstance(v, pl.Tensor) for v in trainer.callback_metrics.values())
    assert all(isinstance(v, pl.Tensor) for v in trainer.logged_metrics.values())
    assert all(isinstance(v, float) for v in trainer.progress_bar_metrics.values())


def test__training_step__epoch_end__log(pl, tmp_path):
    """test_train_loop_logging.py::test__training_step__epoch_end__log."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            loss = out["loss"]
            self.log("a", loss, on_step=True, on_epoch=True)
            self.log_dict({"a1": loss, "a2": loss})
            return out

        def on_train_epoch_end(self):
            self.log("b1", pl.tensor(1.0))
            self.log("b", pl.tensor(2.0), on_epoch=True, prog_bar=True, logger=True)

    model = TestModel()
    model.val_dataloader = None

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=2,
        max_epochs=2,
        log_every_n_steps=1,
        enable_model_summary=False,
    )
    trainer.fit(model)

    logged_metrics = set(trainer.logged_metrics)
    assert logged_metrics == {"a_step", "a_epoch", "b", "b1", "a1", "a2"}

    pbar_metrics = set(trainer.progress_bar_metrics)
    assert pbar_metrics == {"b"}

    assert set(trainer.callback_metrics) == (logged_metrics | pbar_metrics | {"a"})
    assert all(isinstance(v, pl.Tensor) for v in trainer.callback_metrics.values())
    assert all(isinstance(v, pl.Tensor) for v in trainer.logged_metrics.values())
    assert all(isinstance(v, float) for v in trainer.progress_bar_metrics.values())


@pytest.mark.parametrize(
    ("batches", "fx", "result"), [(3, min, 0), (3, "max", 2), (11, max, 10), (5, "avg", 2), (5, "SUM", 10)]
)
def test__training_step__log_max_reduce_fx(pl, tmp_path, batches, fx, result):
    """test_train_loop_logging.py::test__training_step__log_max_reduce_fx (Lightning's ``torch.max`` as the string
    "max": the reduction by name)."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            acc = self.step(batch[0])
            self.log("foo", pl.tensor(batch_idx), on_step=False, on_epoch=True, reduce_fx=fx)
            return acc

        def validation_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("bar", pl.tensor(float(batch_idx)), on_step=False, on_epoch=True, reduce_fx=fx)
            return {"x": loss}

    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=batches,
        limit_val_batches=batches,
        max_epochs=2,
        enable_model_summary=False,
    )
    trainer.fit(model)

    assert trainer.logged_metrics["foo"] == result
    assert trainer.logged_metrics["bar"] == result


def test_log_works_in_train_callback(pl, tmp_path):
    """test_train_loop_logging.py::test_log_works_in_train_callback: a callback logs in every training hook that
    allows it; epoch values are the mean, step values the last."""

    class TestCallback(pl.Callback):
        count = 0
        choices = [False, True]

        logged_values = collections.defaultdict(list)
        call_counter = collections.Counter()
        logged_arguments = {}

        def make_logging(self, pl_module, func_name, on_steps, on_epochs, prob_bars):
            self.call_counter.update([func_name])

            for idx, (on_step, on_epoch, prog_bar) in enumerate(itertools.product(on_steps, on_epochs, prob_bars)):
                fx = f"{func_name}_{idx}"
                if not on_step and not on_epoch:
                    with pytest.raises(pl.MisconfigurationException, match="is not useful"):
                        pl_module.log(fx, self.count, on_step=on_step, on_epoch=on_epoch)
                    continue
                pl_module.log(fx, self.count, on_step=on_step, on_epoch=on_epoch, prog_bar=prog_bar)
                self.logged_values[fx].append(self.count)
                self.logged_arguments[fx] = {"on_step": on_step, "on_epoch": on_epoch, "prog_bar": prog_bar}
                self.count += 1

        def on_train_start(self, _, pl_module):
            self.make_logging(pl_module, "on_train_start", on_steps=[False], on_epochs=[True], prob_bars=self.choices)

        def on_train_epoch_start(self, _, pl_module):
            self.make_logging(
                pl_module, "on_train_epoch_start", on_steps=[False], on_epochs=[True], prob_bars=self.choices
            )

        def on_train_batch_start(self, _, pl_module, *__):
            self.make_logging(
                pl_module, "on_train_batch_start", on_steps=self.choices, on_epochs=self.choices, prob_bars=self.choices
            )

        def on_train_batch_end(self, _, pl_module, *__):
            self.make_logging(
                pl_module, "on_train_batch_end", on_steps=self.choices, on_epochs=self.choices, prob_bars=self.choices
            )

        def on_train_epoch_end(self, _, pl_module):
            self.make_logging(
                pl_module, "on_train_epoch_end", on_steps=[False], on_epochs=[True], prob_bars=self.choices
            )

    class TestModel(pl.BoringModel):
        seen_losses = []

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)["loss"]
            self.seen_losses.append(loss)
            self.log("train_loss", loss, prog_bar=True)
            return {"loss": loss}

    model = TestModel()
    cb = TestCallback()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        max_epochs=1,
        callbacks=[cb],
    )

    trainer.fit(model)

    assert trainer.progress_bar_callback.get_metrics(trainer, model)["train_loss"] == model.seen_losses[-1]
    assert trainer.callback_metrics["train_loss"] == model.seen_losses[-1]

    assert cb.call_counter == {
        "on_train_start": 1,
        "on_train_epoch_start": 1,
        "on_train_batch_start": 2,
        "on_train_batch_end": 2,
        "on_train_epoch_end": 1,
    }

    def get_expected(on_epoch, values):
        reduction = np.mean if on_epoch else np.max
        return reduction(values)

    for fx, value in trainer.callback_metrics.items():
        actual = value.item()
        if fx not in cb.logged_arguments:
            continue
        on_epoch = cb.logged_arguments[fx]["on_epoch"]
        values = cb.logged_values[fx]
        expected = get_expected(on_epoch, values)
        assert actual == expected

    for fx, attrs in cb.logged_arguments.items():
        should_include = attrs["prog_bar"] and attrs["on_step"] ^ attrs["on_epoch"]
        is_included = fx in trainer.progress_bar_metrics
        assert is_included if should_include else not is_included


def test_progress_bar_metrics_contains_values_on_train_epoch_end(pl, tmp_path):
    """test_train_loop_logging.py::test_progress_bar_metrics_contains_values_on_train_epoch_end."""

    class TestModel(pl.BoringModel):
        def training_step(self, *args):
            self.log("foo", pl.tensor(self.current_epoch), on_step=False, on_epoch=True, prog_bar=True)
            return super().training_step(*args)

        def on_train_epoch_end(self, *_):
            self.log(
                "foo_2", pl.tensor(self.current_epoch), prog_bar=True, on_epoch=True, sync_dist=True, reduce_fx="sum"
            )
            self.on_train_epoch_end_called = True

    class TestProgressBar(pl.callbacks.TQDMProgressBar):
        def get_metrics(self, trainer, model):
            items = super().get_metrics(trainer, model)
            items.pop("v_num", None)
            return items

        def on_train_end(self, trainer, model):
            metrics = self.get_metrics(trainer, model)
            assert metrics["foo"] == self.trainer.current_epoch - 1
            assert metrics["foo_2"] == self.trainer.current_epoch - 1
            model.callback_on_train_end_called = True

    progress_bar = TestProgressBar()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[progress_bar],
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=0,
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
    )
    model = TestModel()
    trainer.fit(model)
    assert model.on_train_epoch_end_called
    assert model.callback_on_train_end_called


def test_logging_in_callbacks_with_log_function(pl, tmp_path):
    """test_train_loop_logging.py::test_logging_in_callbacks_with_log_function: ``self.log`` of a callback's
    ``pl_module`` in on_train_start, on_train_epoch_start, on_train_batch_end and on_train_epoch_end."""

    class LoggingCallback(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            pl_module.log("on_train_start", 1)

        def on_train_epoch_start(self, trainer, pl_module):
            pl_module.log("on_train_epoch_start", 2)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            pl_module.log("on_train_batch_end", 3)

        def on_train_epoch_end(self, trainer, pl_module):
            pl_module.log("on_train_epoch_end", 5)

    model = pl.BoringModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=1,
        limit_val_batches=1,
        max_epochs=1,
        enable_model_summary=False,
        callbacks=[LoggingCallback()],
    )
    trainer.fit(model)

    expected = {
        "on_train_start": 1,
        "on_train_epoch_start": 2,
        "on_train_batch_end": 3,
        "on_train_epoch_end": 5,
    }
    assert trainer.callback_metrics == expected


@pytest.mark.parametrize(
    "value",
    [None, {"a": None}, {"a": 1}, {"a": {"b": None}}, {"a": {"b": 1}}, "foo", [1, 2, 3], (1, 2, 3), [[1, 2], 3]],
)
def test_log_invalid_raises(pl, tmp_path, value):
    """test_train_loop_logging.py::test_log_invalid_raises: Lightning's ValueError for what cannot be logged."""

    class TestModel(pl.BoringModel):
        def training_step(self, *args):
            self.log("foo", value)

    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=1)
    model = TestModel()
    match = escape(f"self.log(foo, {value})` was called")
    with pytest.raises(ValueError, match=match):
        trainer.fit(model)


def test_logging_raises(pl, tmp_path):
    """test_train_loop_logging.py::test_logging_raises: the reserved `/dataloader_idx_` key, one name logged with two
    settings, an unknown reduction, a vector (the torchmetrics cases have no MLX counterpart)."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            self.log("foo/dataloader_idx_0", -1)

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=1,
        limit_val_batches=0,
        max_epochs=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
    )
    model = TestModel()
    with pytest.raises(pl.MisconfigurationException, match="`self.log` with the key `foo/dataloader_idx_0`"):
        trainer.fit(model)

    class TestModel(pl.BoringModel):
        def training_step(self, *args):
            self.log("foo", -1, prog_bar=False)
            self.log("foo", -1, prog_bar=True)
            return super().training_step(*args)

    model = TestModel()
    with pytest.raises(pl.MisconfigurationException, match=r"self.log\(foo, ...\)` twice in `training_step`"):
        trainer.fit(model)

    class TestModel(pl.BoringModel):
        def training_step(self, *args):
            self.log("foo", -1, reduce_fx=np.argmax)
            return super().training_step(*args)

    model = TestModel()
    with pytest.raises(pl.MisconfigurationException, match=r"reduce_fx={min,max,mean,sum}\)` are supported"):
        trainer.fit(model)

    class TestModel(pl.BoringModel):
        def on_train_start(self):
            self.log("foo", pl.tensor([1.0, 2.0]))

    model = TestModel()
    with pytest.raises(ValueError, match="tensor must have a single element"):
        trainer.fit(model)


def test_sanity_metrics_are_reset(pl, tmp_path):
    """test_train_loop_logging.py::test_sanity_metrics_are_reset."""

    class TestModel(pl.BoringModel):
        def validation_step(self, batch, batch_idx):
            output = super().validation_step(batch, batch_idx)
            if self.trainer.sanity_checking:
                self.log("val_loss", output["x"], prog_bar=True, logger=True)
            return output

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)["loss"]
            if batch_idx == 0:
                assert self.trainer.progress_bar_metrics == {}
                assert self.trainer.logged_metrics == {}
                assert self.trainer.callback_metrics == {}
            self.log("train_loss", loss, prog_bar=True, logger=True)
            return loss

    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=2, num_sanity_val_steps=2
    )
    trainer.fit(TestModel())

    assert "val_loss" not in trainer.progress_bar_metrics


def test_log_metrics_epoch_step_values(pl, tmp_path):
    """test_train_loop_logging.py::test_log_metrics_epoch_step_values: the default epoch and step values logged."""

    class MyModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            self.log("foo", 0.0, on_step=True, on_epoch=True)
            return super().training_step(batch, batch_idx)

    model = MyModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=0,
        max_epochs=2,
        log_every_n_steps=1,
        enable_model_summary=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        logger=pl.loggers.TensorBoardLogger(tmp_path),
    )
    with mock.patch.object(pl.loggers.TensorBoardLogger, "log_metrics") as mock_log_metrics:
        trainer.fit(model)

    mock_log_metrics.assert_has_calls([
        call(metrics={"foo_step": 0.0, "epoch": 0}, step=0),
        call(metrics={"foo_step": 0.0, "epoch": 0}, step=1),
        call(metrics={"foo_epoch": 0.0, "epoch": 0}, step=1),
        call(metrics={"foo_step": 0.0, "epoch": 1}, step=2),
        call(metrics={"foo_step": 0.0, "epoch": 1}, step=3),
        call(metrics={"foo_epoch": 0.0, "epoch": 1}, step=3),
    ])


def test_log_on_train_start(pl, tmp_path):
    """test_train_loop_logging.py::test_log_on_train_start: what on_train_start logs is reset after the first
    epoch."""

    class MyModel(pl.BoringModel):
        def on_train_start(self):
            self.log("foo", 123)

    model = MyModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=1,
        limit_val_batches=0,
        max_epochs=2,
        log_every_n_steps=1,
        enable_model_summary=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        logger=pl.loggers.TensorBoardLogger(tmp_path),
    )
    with mock.patch.object(pl.loggers.TensorBoardLogger, "log_metrics") as mock_log_metrics:
        trainer.fit(model)

    assert mock_log_metrics.mock_calls == [call(metrics={"foo": 123.0, "epoch": 0}, step=0)]
    assert trainer.max_epochs > 1


def test_different_batch_types_for_sizing(pl, tmp_path):
    """test_train_loop_logging.py::test_different_batch_types_for_sizing: a dict batch is sized by its first
    array."""
    from lightning.pytorch.demos.boring_classes import RandomDictDataset  # torch's data pipeline, on both sides

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            assert isinstance(batch, dict)
            a = batch["a"]
            acc = self.step(a)
            self.log("a", 2, on_step=True, on_epoch=True)
            return acc

        def validation_step(self, batch, batch_idx):
            assert isinstance(batch, dict)
            loss = self.step(batch["a"])
            self.log("n", 3, on_step=True, on_epoch=True)
            return {"x": loss}

        def train_dataloader(self):
            return pl.DataLoader(RandomDictDataset(32, 64), batch_size=32)

        def val_dataloader(self):
            return pl.DataLoader(RandomDictDataset(32, 64), batch_size=32)

    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=1,
        limit_val_batches=2,
        max_epochs=1,
        enable_model_summary=False,
        fast_dev_run=True,
    )
    trainer.fit(model)

    assert set(trainer.logged_metrics) == {"a_step", "a_epoch", "n_step", "n_epoch"}
