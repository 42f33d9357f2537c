"""Ported from Lightning's tests/tests_pytorch/callbacks/test_lr_monitor.py."""

import numpy as np
import pytest

MANUAL_TWO_OPTIMIZERS = ("MLX has no autograd tape: `self.manual_backward(loss)` of a computed loss cannot work (the "
                         "mirror takes the function), and its schedulers are functions, not objects with step()")


def test_lr_monitor_single_lr(pl, tmp_path):
    """test_lr_monitor.py::test_lr_monitor_single_lr: one scheduler, `lr-SGD`, no momentum or weight decay."""
    model = pl.BoringModel()

    lr_monitor = pl.callbacks.LearningRateMonitor()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        limit_val_batches=0.1,
        limit_train_batches=0.5,
        callbacks=[lr_monitor],
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    trainer.fit(model)

    assert lr_monitor.lrs, "No learning rates logged"
    assert all(v is None for v in lr_monitor.last_momentum_values.values()), "Momentum should not be logged by default"
    assert all(v is None for v in lr_monitor.last_weight_decay_values.values()), (
        "Weight decay should not be logged by default"
    )
    assert len(lr_monitor.lrs) == len(trainer.lr_scheduler_configs)
    assert list(lr_monitor.lrs) == ["lr-SGD"]


def _momentum_optimizer(pl, module, opt):
    if opt == "SGD":
        return pl.sgd(module, lr=1e-2, momentum=0.9)
    return pl.adam(module, lr=1e-2, betas=(0.9, 0.999))


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_lr_monitor_single_lr_with_momentum(pl, tmp_path, opt: str):
    """test_lr_monitor.py::test_lr_monitor_single_lr_with_momentum: `lr-<opt>-momentum` and `-weight_decay` (the
    scheduler a StepLR where Lightning's is a OneCycleLR: its kind does not matter here)."""

    class LogMomentumModel(pl.BoringModel):
        def __init__(self, opt):
            super().__init__()
            self.opt = opt

        def configure_optimizers(self):
            optimizer = _momentum_optimizer(pl, self, self.opt)
            lr_scheduler = pl.step_lr(optimizer)
            return [optimizer], [lr_scheduler]

    model = LogMomentumModel(opt=opt)
    lr_monitor = pl.callbacks.LearningRateMonitor(log_momentum=True, log_weight_decay=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        limit_val_batches=2,
        limit_train_batches=5,
        log_every_n_steps=1,
        callbacks=[lr_monitor],
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    trainer.fit(model)

    assert all(v is not None for v in lr_monitor.last_momentum_values.values()), "Expected momentum to be logged"
    assert len(lr_monitor.last_momentum_values) == len(trainer.lr_scheduler_configs)
    assert all(k == f"lr-{opt}-momentum" for k in lr_monitor.last_momentum_values)

    assert all(v is not None for v in lr_monitor.last_weight_decay_values.values()), (
        "Expected weight decay to be logged"
    )
    assert len(lr_monitor.last_weight_decay_values) == len(trainer.lr_scheduler_configs)
    assert all(k == f"lr-{opt}-weight_decay" for k in lr_monitor.last_weight_decay_values)


def test_lr_monitor_no_lr_scheduler_single_lr(pl, tmp_path):
    """test_lr_monitor.py::test_lr_monitor_no_lr_scheduler_single_lr."""

    class CustomBoringModel(pl.BoringModel):
        def configure_optimizers(self):
            return pl.sgd(self, lr=0.1)

    model = CustomBoringModel()

    lr_monitor = pl.callbacks.LearningRateMonitor()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        limit_val_batches=0.1,
        limit_train_batches=0.5,
        callbacks=[lr_monitor],
        logger=pl.loggers.CSVLogger(tmp_path),
    )

    trainer.fit(model)

    assert lr_monitor.lrs, "No learning rates logged"
    assert len(lr_monitor.lrs) == len(trainer.optimizers)
    assert list(lr_monitor.lrs) == ["lr-SGD"]


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_lr_monitor_no_lr_scheduler_single_lr_with_momentum(pl, tmp_path, opt: str):
    """test_lr_monitor.py::test_lr_monitor_no_lr_scheduler_single_lr_with_momentum."""

    class LogMomentumModel(pl.BoringModel):
        def __init__(self, opt):
            super().__init__()
            self.opt = opt

        def configure_optimizers(self):
            return [_momentum_optimizer(pl, self, self.opt)]

    model = LogMomentumModel(opt=opt)
    lr_monitor = pl.callbacks.LearningRateMonitor(log_momentum=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        limit_val_batches=2,
        limit_train_batches=5,
        log_every_n_steps=1,
        callbacks=[lr_monitor],
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    trainer.fit(model)

    assert all(v is not None for v in lr_monitor.last_momentum_values.values()), "Expected momentum to be logged"
    assert len(lr_monitor.last_momentum_values) == len(trainer.optimizers)
    assert all(k == f"lr-{opt}-momentum" for k in lr_monitor.last_momentum_values)


def test_lr_monitor_no_logger(pl, tmp_path):
    """test_lr_monitor.py::test_lr_monitor_no_logger: Lightning's error without a logger."""
    model = pl.BoringModel()

    lr_monitor = pl.callbacks.LearningRateMonitor()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, callbacks=[lr_monitor], logger=False)

    with pytest.raises(pl.MisconfigurationException, match="`Trainer` that has no logger"):
        trainer.fit(model)


def two_adam_model(pl, with_schedulers):
    """Lightning's ``CustomBoringModel`` of the multi-lr tests: two Adams under manual optimization."""

    class CustomBoringModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            opt1, opt2 = self.optimizers()

            loss = self.loss(self.step(batch))
            opt1.zero_grad()
            self.manual_backward(loss)
            opt1.step()

            loss = self.loss(self.step(batch))
            opt2.zero_grad()
            self.manual_backward(loss)
            opt2.step()

        def on_train_epoch_end(self):
            if with_schedulers:
                scheduler1, scheduler2 = self.lr_schedulers()
                scheduler1.step()
                scheduler2.step()

        def configure_optimizers(self):
            optimizer1 = pl.adam(self, lr=1e-2)
            optimizer2 = pl.adam(self, lr=1e-2)
            if not with_schedulers:
                return [optimizer1, optimizer2]
            lr_scheduler1 = pl.step_lr(optimizer1, 1, gamma=0.1)
            lr_scheduler2 = pl.step_lr(optimizer2, 1, gamma=0.1)
            return [optimizer1, optimizer2], [lr_scheduler1, lr_scheduler2]

    return CustomBoringModel()


@pytest.mark.mirror_differs(MANUAL_TWO_OPTIMIZERS)
@pytest.mark.parametrize("logging_interval", ["step", "epoch"])
def test_lr_monitor_multi_lrs(pl, tmp_path, logging_interval: str):
    """test_lr_monitor.py::test_lr_monitor_multi_lrs: two schedulers of two Adams, `lr-Adam` and `lr-Adam-1`."""
    model = two_adam_model(pl, with_schedulers=True)

    lr_monitor = pl.callbacks.LearningRateMonitor(logging_interval=logging_interval)
    log_every_n_steps = 2

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        log_every_n_steps=log_every_n_steps,
        limit_train_batches=7,
        limit_val_batches=0.1,
        callbacks=[lr_monitor],
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    trainer.fit(model)

    assert lr_monitor.lrs, "No learning rates logged"
    assert len(lr_monitor.lrs) == len(trainer.lr_scheduler_configs)
    assert list(lr_monitor.lrs) == ["lr-Adam", "lr-Adam-1"], "Names of learning rates not set correctly"

    if logging_interval == "step":
        expected_number_logged = trainer.global_step // 2 // log_every_n_steps
    if logging_interval == "epoch":
        expected_number_logged = trainer.max_epochs

    assert all(len(lr) == expected_number_logged for lr in lr_monitor.lrs.values())


@pytest.mark.mirror_differs(MANUAL_TWO_OPTIMIZERS)
@pytest.mark.parametrize("logging_interval", ["step", "epoch"])
def test_lr_monitor_no_lr_scheduler_multi_lrs(pl, tmp_path, logging_interval: str):
    """test_lr_monitor.py::test_lr_monitor_no_lr_scheduler_multi_lrs: two Adams without scheduler."""
    model = two_adam_model(pl, with_schedulers=False)

    lr_monitor = pl.callbacks.LearningRateMonitor(logging_interval=logging_interval)
    log_every_n_steps = 2

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        log_every_n_steps=log_every_n_steps,
        limit_train_batches=7,
        limit_val_batches=0.1,
        callbacks=[lr_monitor],
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    trainer.fit(model)

    assert lr_monitor.lrs, "No learning rates logged"
    assert len(lr_monitor.lrs) == len(trainer.optimizers)
    assert list(lr_monitor.lrs) == ["lr-Adam", "lr-Adam-1"], "Names of learning rates not set correctly"

    if logging_interval == "step":
        expected_number_logged = trainer.global_step // 2 // log_every_n_steps
    if logging_interval == "epoch":
        expected_number_logged = trainer.max_epochs

    assert all(len(lr) == expected_number_logged for lr in lr_monitor.lrs.values())


def test_lr_monitor_custom_name(pl, tmp_path):
    """test_lr_monitor.py::test_lr_monitor_custom_name: a scheduler config's `name`."""

    class TestModel(pl.BoringModel):
        def configure_optimizers(self):
            optimizer, [scheduler] = super().configure_optimizers()
            lr_scheduler = {"scheduler": scheduler, "name": "my_logging_name"}
            return optimizer, [lr_scheduler]

    lr_monitor = pl.callbacks.LearningRateMonitor()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        limit_val_batches=0.1,
        limit_train_batches=0.5,
        callbacks=[lr_monitor],
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    trainer.fit(TestModel())
    assert list(lr_monitor.lrs) == ["my_logging_name"]


def test_lr_monitor_update_callback_metrics(pl, tmp_path):
    """test_lr_monitor.py::test_lr_monitor_update_callback_metrics: early stopping on the logged rate."""

    class TestModel(pl.BoringModel):
        def configure_optimizers(self):
            optimizer = pl.sgd(self.layer, lr=0.1)
            lr_scheduler = pl.step_lr(optimizer, step_size=1, gamma=0.5)
            return [optimizer], [lr_scheduler]

    monitor_key = "lr-SGD"
    stop_threshold = 0.02
    expected_stop_epoch = 3

    lr_monitor = pl.callbacks.LearningRateMonitor()
    lr_es = pl.callbacks.EarlyStopping(
        monitor=monitor_key, mode="min", stopping_threshold=stop_threshold, check_on_train_epoch_end=True
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[lr_monitor, lr_es],
        max_epochs=5,
        limit_val_batches=0,
        limit_train_batches=2,
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    model = TestModel()
    trainer.fit(model)

    assert monitor_key in trainer.callback_metrics
    assert lr_monitor.lrs[monitor_key] == [0.1, 0.05, 0.025, 0.0125]
    assert min(lr_monitor.lrs[monitor_key][:expected_stop_epoch]) > stop_threshold
    assert len(lr_monitor.lrs[monitor_key][expected_stop_epoch:]) == 1
    assert min(lr_monitor.lrs[monitor_key][expected_stop_epoch:]) < stop_threshold
    assert trainer.current_epoch - 1 == expected_stop_epoch
    assert lr_es.stopped_epoch == expected_stop_epoch


def test_lr_monitor_with_float64_lr(pl, tmp_path):
    """test_lr_monitor.py::test_lr_monitor_with_float64_lr: a float64 rate logs, as a tensor in callback_metrics."""

    class Float64LRModel(pl.BoringModel):
        def configure_optimizers(self):
            return pl.sgd(self, lr=np.float64(0.01))

    model = Float64LRModel()
    lr_monitor = pl.callbacks.LearningRateMonitor()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        callbacks=[lr_monitor],
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    trainer.fit(model)

    assert lr_monitor.lrs, "No learning rates logged"
    assert list(lr_monitor.lrs) == ["lr-SGD"]
    assert lr_monitor.lrs["lr-SGD"][0] == pytest.approx(0.01)
    assert "lr-SGD" in trainer.callback_metrics
    assert isinstance(trainer.callback_metrics["lr-SGD"], pl.Tensor)
