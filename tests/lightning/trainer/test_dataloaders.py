"""Ported from Lightning's tests/tests_pytorch/trainer/test_dataloaders.py: which loaders each entry point uses,
several validation/test loaders, iterables without ``len()``, batch limits and their errors.

Left out: the worker, sampler, distributed and ``reload_dataloaders_every_n_epochs`` cases (torch's DataLoader
internals and flags the mirror refuses), the ``CombinedLoader`` cases (the mirror has none) and those that patch
Lightning's private loop methods."""

from unittest.mock import Mock, call

import pytest


class _Loaders:
    """Lightning's CustomInfDataloader / CustomNotImplementedErrorDataloader (tests_pytorch/helpers/dataloaders.py)."""

    class CustomInfDataloader:
        def __init__(self, dataloader):
            self.dataloader = dataloader
            self.iter = iter(dataloader)
            self.count = 0
            self.dataloader.num_workers = 0  # reduce chance for hanging pytest

        def __iter__(self):
            self.count = 0
            return self

        def __next__(self):
            if self.count >= 50:
                raise StopIteration
            self.count = self.count + 1
            try:
                return next(self.iter)
            except StopIteration:
                self.iter = iter(self.dataloader)
                return next(self.iter)

    class CustomNotImplementedErrorDataloader(CustomInfDataloader):
        def __len__(self):
            """Raise NotImplementedError."""
            raise NotImplementedError

        def __next__(self):
            if self.count >= 2:
                raise StopIteration
            self.count = self.count + 1
            try:
                return next(self.iter)
            except StopIteration:
                self.iter = iter(self.dataloader)
                return next(self.iter)


def multi_val_model(pl):
    class MultiValDataLoaderBoringModel(pl.BoringModel):
        def val_dataloader(self):
            return [pl.DataLoader(pl.RandomDataset(32, 64)), pl.DataLoader(pl.RandomDataset(32, 64), batch_size=8)]

        def validation_step(self, batch, batch_idx, dataloader_idx):
            return super().validation_step(batch, batch_idx)

    return MultiValDataLoaderBoringModel


def multi_eval_model(pl):
    class MultiEvalDataLoaderModel(multi_val_model(pl)):
        def test_dataloader(self):
            return [pl.DataLoader(pl.RandomDataset(32, 64)), pl.DataLoader(pl.RandomDataset(32, 64), batch_size=8)]

        def test_step(self, batch, batch_idx, dataloader_idx):
            return super().test_step(batch, batch_idx)

    return MultiEvalDataLoaderModel


def test_fit_train_loader_only(pl, tmp_path):
    """test_dataloaders.py::test_fit_train_loader_only: hooks and steps set to None, only a train loader given."""
    model = pl.BoringModel()
    train_dataloader = model.train_dataloader()

    model.train_dataloader = None
    model.val_dataloader = None
    model.test_dataloader = None

    model.validation_step = None
    model.test_step = None

    trainer = pl.Trainer(fast_dev_run=True, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=train_dataloader)


def test_fit_val_loader_only(pl, tmp_path):
    """test_dataloaders.py::test_fit_val_loader_only: the loader hooks set to None, train and val loaders given."""
    model = pl.BoringModel()
    train_dataloader = model.train_dataloader()
    val_dataloader = model.val_dataloader()

    model.train_dataloader = None
    model.val_dataloader = None
    model.test_dataloader = None

    model.test_step = None

    trainer = pl.Trainer(fast_dev_run=True, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=train_dataloader, val_dataloaders=val_dataloader)


@pytest.mark.parametrize("dataloader_options", [{"val_check_interval": 10000}])
def test_dataloader_config_errors_runtime(pl, tmp_path, dataloader_options):
    """test_dataloaders.py::test_dataloader_config_errors_runtime: an interval beyond the epoch raises at fit."""
    model = pl.BoringModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, **dataloader_options)
    with pytest.raises(ValueError, match="less than or equal to the number of the training batches"):
        trainer.fit(model)


@pytest.mark.parametrize(
    "dataloader_options",
    [
        {"limit_train_batches": -0.1},
        {"limit_train_batches": 1.2},
        {"limit_val_batches": -0.1},
        {"limit_val_batches": 1.2},
        {"limit_test_batches": -0.1},
        {"limit_test_batches": 1.2},
        {"val_check_interval": -0.1},
        {"val_check_interval": 1.2},
        {"overfit_batches": -0.1},
        {"overfit_batches": 1.2},
    ],
)
def test_dataloader_config_errors_init(pl, tmp_path, dataloader_options):
    """test_dataloaders.py::test_dataloader_config_errors_init: a limit neither a fraction nor a count raises."""
    with pytest.raises(pl.MisconfigurationException, match="passed invalid value"):
        pl.Trainer(default_root_dir=tmp_path, max_epochs=1, **dataloader_options)


def test_multiple_val_dataloader(pl, tmp_path):
    """test_dataloaders.py::test_multiple_val_dataloader: two validation loaders from the module's hook."""
    model = multi_val_model(pl)()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, limit_val_batches=0.3, limit_train_batches=1.0)
    trainer.fit(model)

    # verify there are 2 val loaders
    assert len(trainer.val_dataloaders) == 2, "Multiple val_dataloaders not initiated properly"


@pytest.mark.parametrize("ckpt_path", [None, "best", "specific"])
def test_multiple_eval_dataloader(pl, tmp_path, ckpt_path):
    """test_dataloaders.py::test_multiple_eval_dataloader: validate and test with two loaders each, after fit."""
    model = multi_eval_model(pl)()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, limit_val_batches=10, limit_train_batches=100)
    trainer.fit(model)
    ckpt_path = trainer.checkpoint_callback.best_model_path if ckpt_path == "specific" else ckpt_path

    trainer.validate(ckpt_path=ckpt_path, verbose=False)
    # verify there are 2 loaders
    assert len(trainer.val_dataloaders) == 2

    trainer.test(ckpt_path=ckpt_path, verbose=False)
    assert len(trainer.test_dataloaders) == 2


def test_train_dataloader_passed_to_fit(pl, tmp_path):
    """test_dataloaders.py::test_train_dataloader_passed_to_fit: the loader given is the trainer's."""
    # only train passed to fit
    model = pl.BoringModel()
    train_loader = model.train_dataloader()
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=2)
    fit_options = {"train_dataloaders": train_loader}
    trainer.fit(model, **fit_options)
    assert trainer.num_training_batches == 2
    assert trainer.train_dataloader == train_loader


@pytest.mark.parametrize("ckpt_path", [None, "best", "specific"])
@pytest.mark.parametrize("n", [1, 2])
def test_dataloaders_passed_to_fn(pl, tmp_path, ckpt_path, n):
    """test_dataloaders.py::test_dataloaders_passed_to_fn: one or several loaders given to fit, test, validate."""
    train_dataloaders = pl.DataLoader(pl.RandomDataset(32, 64))
    if n == 1:
        model = pl.BoringModel()
        eval_dataloaders = pl.DataLoader(pl.RandomDataset(32, 64))
    else:
        model = multi_eval_model(pl)()
        eval_dataloaders = [pl.DataLoader(pl.RandomDataset(32, 64)), pl.DataLoader(pl.RandomDataset(32, 64))]

    # multiple val dataloaders passed to fit
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, limit_val_batches=0.1, limit_train_batches=0.2)

    trainer.fit(model, train_dataloaders=train_dataloaders, val_dataloaders=eval_dataloaders)
    if n > 1:
        assert len(trainer.val_dataloaders) == n
    else:
        assert isinstance(trainer.val_dataloaders, pl.DataLoader)

    if ckpt_path == "specific":
        ckpt_path = trainer.checkpoint_callback.best_model_path

    trainer.test(dataloaders=eval_dataloaders, ckpt_path=ckpt_path)
    if n > 1:
        assert len(trainer.test_dataloaders) == n
    else:
        assert isinstance(trainer.test_dataloaders, pl.DataLoader)

    trainer.validate(dataloaders=eval_dataloaders, ckpt_path=ckpt_path)
    if n > 1:
        assert len(trainer.val_dataloaders) == n
    else:
        assert isinstance(trainer.val_dataloaders, pl.DataLoader)


def dummy_model(pl):
    class DummyModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            self.log("loss", self.global_step)
            return super().training_step(batch, batch_idx)

        def on_validation_epoch_end(self):
            self.log("val_log", self.current_epoch)

    return DummyModel


def counter(pl):
    class Counter(pl.Callback):
        def __init__(self):
            super().__init__()
            self.train_epoch_count = 0
            self.val_epoch_count = 0
            self.test_epoch_count = 0
            self.train_batches_seen = 0
            self.val_batches_seen = 0
            self.test_batches_seen = 0

        def on_train_batch_start(self, *_):
            self.train_batches_seen += 1

        def on_train_epoch_start(self, *_):
            self.train_epoch_count += 1

        def on_validation_batch_start(self, *_):
            self.val_batches_seen += 1

        def on_test_batch_start(self, *_):
            self.test_batches_seen += 1

        def on_validation_epoch_start(self, *_):
            self.val_epoch_count += 1

        def on_test_epoch_start(self, *_):
            self.test_epoch_count += 1

    return Counter()


def test_inf_dataloaders_with_limit_percent_batches(pl, tmp_path):
    """test_dataloaders.py::test_inf_dataloaders_with_limit_percent_batches: IterableDataset loaders for train, val
    and test run to their end under a 1.0 limit (``has_len_all_ranks`` read as ``len()`` failing)."""
    epoch_cb = counter(pl)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        max_epochs=1,
        callbacks=[epoch_cb],
        limit_train_batches=1.0,
        limit_val_batches=1.0,
        limit_test_batches=1.0,
    )
    model = dummy_model(pl)()

    batch_size = 8
    train_dl = pl.DataLoader(dataset=pl.RandomIterableDataset(32, 128), batch_size=batch_size)
    val_dl = pl.DataLoader(dataset=pl.RandomIterableDataset(32, 128), batch_size=batch_size)
    test_dl = pl.DataLoader(dataset=pl.RandomIterableDataset(32, 128), batch_size=batch_size)

    num_batches = 128 / batch_size
    for dl in (train_dl, val_dl, test_dl):
        assert sum(1 for _ in dl) == num_batches

    trainer.fit(model, train_dataloaders=train_dl, val_dataloaders=val_dl)

    assert trainer.num_training_batches == float("inf")
    assert epoch_cb.train_epoch_count == 1

    assert trainer.num_val_batches[0] == float("inf")
    assert epoch_cb.val_epoch_count == 1

    trainer.test(model, dataloaders=test_dl)
    assert trainer.num_test_batches[0] == float("inf")
    assert epoch_cb.test_epoch_count == 1


DATASETS = [("RandomDataset", 10), ("RandomIterableDataset", 10), ("RandomIterableDatasetWithLen", 10)]


@pytest.mark.parametrize(("dataset", "limit_train_batches"), DATASETS)
def test_dataloaders_with_limit_train_batches(pl, tmp_path, dataset, limit_train_batches):
    """test_dataloaders.py::test_dataloaders_with_limit_train_batches: a count limits sized and unsized loaders."""
    dataset = getattr(pl, dataset)(32, 128)
    epoch_cb = counter(pl)
    max_epochs = 2
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        max_epochs=max_epochs,
        callbacks=[epoch_cb],
        limit_train_batches=limit_train_batches,
    )
    model = dummy_model(pl)()

    batch_size = 8
    train_dl = pl.DataLoader(dataset=dataset, batch_size=batch_size)
    val_dl = pl.DataLoader(dataset=dataset, batch_size=batch_size)

    trainer.fit(model, train_dataloaders=train_dl, val_dataloaders=val_dl)

    assert trainer.num_training_batches == limit_train_batches
    assert epoch_cb.train_epoch_count == max_epochs
    assert epoch_cb.train_batches_seen == limit_train_batches * max_epochs


@pytest.mark.parametrize("dataset", [name for name, _ in DATASETS])
def test_dataloaders_with_limit_val_batches(pl, tmp_path, dataset):
    """test_dataloaders.py::test_dataloaders_with_limit_val_batches: a count limits sized and unsized val loaders."""
    dataset = getattr(pl, dataset)(32, 128)
    epoch_cb = counter(pl)
    callbacks = [epoch_cb]
    enable_checkpointing = False

    max_epochs = 2
    limit_val_batches = 10
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        max_epochs=max_epochs,
        callbacks=callbacks,
        limit_val_batches=limit_val_batches,
        enable_checkpointing=enable_checkpointing,
    )
    model = dummy_model(pl)()

    batch_size = 8
    train_dl = pl.DataLoader(dataset=dataset, batch_size=batch_size)
    val_dl = pl.DataLoader(dataset=dataset, batch_size=batch_size)

    trainer.fit(model, train_dataloaders=train_dl, val_dataloaders=val_dl)
    assert trainer.num_val_batches[0] == limit_val_batches
    assert epoch_cb.val_epoch_count == max_epochs
    assert epoch_cb.val_batches_seen == limit_val_batches * max_epochs


@pytest.mark.parametrize("dataset", [name for name, _ in DATASETS])
def test_datasets_dataloaders_with_limit_num_batches(pl, tmp_path, dataset):
    """test_dataloaders.py::test_datasets_dataloaders_with_limit_num_batches: one count limits train, val, test."""
    dataset = getattr(pl, dataset)(32, 128)
    epoch_cb = counter(pl)
    max_epochs = 2
    limit_batches = 10
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        max_epochs=max_epochs,
        callbacks=[epoch_cb],
        limit_train_batches=limit_batches,
        limit_val_batches=limit_batches,
        limit_test_batches=limit_batches,
    )
    model = dummy_model(pl)()

    batch_size = 8
    train_dl = pl.DataLoader(dataset=dataset, batch_size=batch_size)
    val_dl = pl.DataLoader(dataset=dataset, batch_size=batch_size)
    test_dl = pl.DataLoader(dataset=dataset, batch_size=batch_size)

    trainer.fit(model, train_dataloaders=train_dl, val_dataloaders=val_dl)

    assert trainer.num_training_batches == limit_batches
    assert trainer.num_val_batches[0] == limit_batches
    assert epoch_cb.train_epoch_count == max_epochs
    assert epoch_cb.train_batches_seen == limit_batches * max_epochs
    assert epoch_cb.val_epoch_count == max_epochs
    assert epoch_cb.val_batches_seen == limit_batches * max_epochs

    trainer.test(model, dataloaders=test_dl)
    assert trainer.num_test_batches[0] == limit_batches
    assert epoch_cb.test_epoch_count == 1


@pytest.mark.parametrize(
    ("limit_train_batches", "limit_val_batches", "limit_test_batches"),
    [(1.0, 1.0, 1.0), (0.2, 0.4, 0.4)],
)
def test_dataloaders_with_limit_percent_batches(pl, tmp_path, limit_train_batches, limit_val_batches,
                                                limit_test_batches):
    """test_dataloaders.py::test_dataloaders_with_limit_percent_batches: fractions per loader, several loaders."""
    model = multi_eval_model(pl)()
    # train, multiple val and multiple test passed with percent_check
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=limit_train_batches,
        limit_val_batches=limit_val_batches,
        limit_test_batches=limit_test_batches,
    )
    trainer.fit(model)
    expected_train_batches = int(len(trainer.train_dataloader) * limit_train_batches)
    expected_val_batches = [int(len(dataloader) * limit_val_batches) for dataloader in trainer.val_dataloaders]
    assert trainer.num_training_batches == expected_train_batches
    assert trainer.num_val_batches == expected_val_batches

    trainer.test(model)
    expected_test_batches = [int(len(dataloader) * limit_test_batches) for dataloader in trainer.test_dataloaders]
    assert trainer.num_test_batches == expected_test_batches


@pytest.mark.parametrize("fast_dev_run", [True, 1, 3, -1])
def test_dataloaders_with_fast_dev_run(pl, tmp_path, fast_dev_run):
    """test_dataloaders.py::test_dataloaders_with_fast_dev_run: fast_dev_run's batch counts for every loader."""
    model = multi_eval_model(pl)()
    trainer_options = {"default_root_dir": tmp_path, "max_epochs": 2, "fast_dev_run": fast_dev_run}

    if fast_dev_run == -1:
        with pytest.raises(pl.MisconfigurationException, match="should be >= 0"):
            pl.Trainer(**trainer_options)
    else:
        trainer = pl.Trainer(**trainer_options)

        # fast_dev_run is set to True when it is 1
        if fast_dev_run == 1:
            fast_dev_run = True

        assert trainer.fast_dev_run is fast_dev_run

        if fast_dev_run is True:
            fast_dev_run = 1

        assert trainer.limit_train_batches == fast_dev_run
        assert trainer.limit_val_batches == fast_dev_run
        assert trainer.limit_test_batches == fast_dev_run
        assert trainer.num_sanity_val_steps == 0
        assert trainer.max_epochs == 1

        trainer.fit(model)
        assert trainer.enable_validation
        assert trainer.num_training_batches == fast_dev_run
        assert trainer.num_val_batches == [fast_dev_run] * len(trainer.val_dataloaders)

        trainer.test(model)
        assert trainer.num_test_batches == [fast_dev_run] * len(trainer.test_dataloaders)


@pytest.mark.parametrize("ckpt_path", [None, "best", "specific"])
def test_mixing_of_dataloader_options(pl, tmp_path, ckpt_path):
    """test_dataloaders.py::test_mixing_of_dataloader_options: the train loader from the hook, val/test given."""
    model = pl.BoringModel()
    eval_dataloader = pl.DataLoader(pl.RandomDataset(32, 64))
    trainer_options = {
        "default_root_dir": tmp_path,
        "max_epochs": 1,
        "limit_val_batches": 0.1,
        "limit_train_batches": 0.2,
    }

    # fit model
    trainer = pl.Trainer(**trainer_options)
    trainer.fit(model, val_dataloaders=eval_dataloader)
    assert trainer.val_dataloaders == eval_dataloader

    ckpt_path = trainer.checkpoint_callback.best_model_path if ckpt_path == "specific" else ckpt_path
    trainer.test(dataloaders=eval_dataloader, ckpt_path=ckpt_path)
    assert trainer.test_dataloaders == eval_dataloader


@pytest.mark.parametrize("log_interval", [2, 11])
def test_warning_with_small_dataloader_and_logging_interval(pl, log_interval, tmp_path):
    """test_dataloaders.py::test_warning_with_small_dataloader_and_logging_interval: fewer batches than the logging
    interval warn."""
    model = pl.BoringModel()
    dataloader = pl.DataLoader(pl.RandomDataset(32, length=10))
    model.train_dataloader = lambda: dataloader

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        log_every_n_steps=log_interval,
        limit_train_batches=1 if log_interval < 10 else None,
        logger=pl.loggers.CSVLogger(tmp_path),
    )
    with pytest.warns(
        UserWarning,
        match=rf"The number of training batches \({log_interval - 1}\) is smaller than the logging interval",
    ):
        trainer.fit(model)


def test_warning_with_small_dataloader_and_fast_dev_run(pl, tmp_path, recwarn):
    """test_dataloaders.py::test_warning_with_small_dataloader_and_fast_dev_run: not under fast_dev_run."""
    model = pl.BoringModel()
    dataloader = pl.DataLoader(pl.RandomDataset(32, length=10))
    model.train_dataloader = lambda: dataloader

    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=True, log_every_n_steps=2)
    trainer.fit(model)
    assert not [w for w in recwarn if "The number of training batches" in str(w.message)]


@pytest.mark.parametrize("yield_at_all", [False, True])
def test_iterable_dataset_stop_iteration_at_epoch_beginning(pl, yield_at_all, tmp_path):
    """test_dataloaders.py::test_iterable_dataset_stop_iteration_at_epoch_beginning: an iterator empty from the
    start skips the epoch's training, and the epoch still counts."""
    import torch
    from torch.utils.data import IterableDataset

    class TestDataset(IterableDataset):
        def __init__(self, gen):
            self.gen = gen

        def __iter__(self):
            return iter(self.gen())

    class TestModel(pl.BoringModel):
        def gen(self):
            # produce data in epoch 0, no data otherwise
            if yield_at_all and self.current_epoch == 0:
                yield torch.rand(32)
                yield torch.rand(32)
                yield torch.rand(32)

    model = TestModel()
    train_dataloader = pl.DataLoader(TestDataset(model.gen), batch_size=2)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        max_epochs=2,
        enable_model_summary=False,
    )
    trainer.fit(model, train_dataloaders=train_dataloader)
    assert trainer.global_step == 2 * yield_at_all
    # even though the generator might not yield any data, the fit_loop still advances so the
    # current epoch gets increased
    assert trainer.current_epoch == 2


@pytest.mark.parametrize("check_interval", [50, 1.0])
@pytest.mark.parametrize("dataloader_wrapper", ["CustomNotImplementedErrorDataloader", "CustomInfDataloader"])
def test_train_dataloader_not_implemented_error(pl, tmp_path, check_interval, dataloader_wrapper):
    """test_dataloaders.py::test_train_dataloader_not_implemented_error: loaders whose len() fails train."""
    dataloader_wrapper = getattr(_Loaders, dataloader_wrapper)

    class CustomBoringModel(pl.BoringModel):
        def train_dataloader(self):
            return dataloader_wrapper(pl.DataLoader(pl.RandomDataset(32, 64)))

        def val_dataloader(self):
            return dataloader_wrapper(pl.DataLoader(pl.RandomDataset(32, 64)))

    model = CustomBoringModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, max_steps=5, max_epochs=1, val_check_interval=check_interval)
    trainer.fit(model)
    # verify training completed


@pytest.mark.parametrize(("prefix", "trainer_fn"),
                         [("train", "fit"), ("val", "validate"), ("test", "test"), ("predict", "predict")])
@pytest.mark.parametrize("dataloader_wrapper", ["CustomNotImplementedErrorDataloader", "CustomInfDataloader"])
def test_inf_dataloader_raise_error_with_partial_batch_limits(pl, tmp_path, prefix, trainer_fn, dataloader_wrapper):
    """test_dataloaders.py::test_inf_dataloader_raise_error_with_partial_batch_limits: a fraction of a loader without
    len() raises."""
    dataloader_wrapper = getattr(_Loaders, dataloader_wrapper)
    model = pl.BoringModel()
    setattr(model, f"{prefix}_dataloader", lambda: dataloader_wrapper(pl.DataLoader(pl.RandomDataset(32, 64))))
    trainer_kwargs = {"default_root_dir": tmp_path, "max_epochs": 1, f"limit_{prefix}_batches": 0.5}
    trainer = pl.Trainer(**trainer_kwargs)

    with pytest.raises(pl.MisconfigurationException, match=r"IterableDataset`.*limit_.*_batches\)`.*`1.0` or an int"):
        getattr(trainer, trainer_fn)(model)


def test_dataloaders_load_only_once(pl, tmp_path):
    """test_dataloaders.py::test_dataloaders_load_only_once: each hook once in a fit, val first (sanity check)."""
    model = pl.BoringModel()
    tracker = Mock()

    model.train_dataloader = Mock(wraps=model.train_dataloader)
    model.val_dataloader = Mock(wraps=model.val_dataloader)
    model.test_dataloader = Mock(wraps=model.test_dataloader)

    tracker.attach_mock(model.train_dataloader, "train_dataloader")
    tracker.attach_mock(model.val_dataloader, "val_dataloader")
    tracker.attach_mock(model.test_dataloader, "test_dataloader")

    trainer = pl.Trainer(default_root_dir=tmp_path, limit_train_batches=0.3, limit_val_batches=0.3, max_epochs=3)
    trainer.fit(model)

    model.train_dataloader.assert_called_once()
    model.val_dataloader.assert_called_once()
    model.test_dataloader.assert_not_called()

    assert tracker.mock_calls == [call.val_dataloader(), call.train_dataloader()]


def test_dataloaders_load_only_once_no_sanity_check(pl, tmp_path):
    """test_dataloaders.py::test_dataloaders_load_only_once_no_sanity_check: train first without a sanity check."""
    model = pl.BoringModel()

    # logger file to get meta
    trainer = pl.Trainer(
        default_root_dir=tmp_path, limit_train_batches=0.3, limit_val_batches=0.3, num_sanity_val_steps=0, max_epochs=3
    )

    tracker = Mock()
    model.train_dataloader = Mock(wraps=model.train_dataloader)
    model.val_dataloader = Mock(wraps=model.val_dataloader)
    model.test_dataloader = Mock(wraps=model.test_dataloader)

    tracker.attach_mock(model.train_dataloader, "train_dataloader")
    tracker.attach_mock(model.val_dataloader, "val_dataloader")
    tracker.attach_mock(model.test_dataloader, "test_dataloader")

    trainer.fit(model)

    # verify the sequence
    expected_sequence = [call.train_dataloader(), call.val_dataloader()]
    assert tracker.mock_calls == expected_sequence
