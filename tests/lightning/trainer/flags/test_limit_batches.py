"""Ported from Lightning's tests/tests_pytorch/trainer/flags/test_limit_batches.py."""

import logging

import pytest


def test_num_dataloader_batches(pl, tmp_path):
    """test_limit_batches.py::test_num_dataloader_batches: the correct number of batches are allocated."""
    # when we have fewer batches in the dataloader we should use those instead of the limit
    model = pl.BoringModel()
    trainer = pl.Trainer(limit_val_batches=100, limit_train_batches=100, max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(model)

    assert len(model.train_dataloader()) == 64
    assert len(model.val_dataloader()) == 64
    assert isinstance(trainer.num_val_batches, list)
    assert trainer.num_val_batches[0] == 64
    assert trainer.num_training_batches == 64

    # when we have more batches in the dataloader we should limit them
    model = pl.BoringModel()
    trainer = pl.Trainer(limit_val_batches=7, limit_train_batches=7, max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(model)

    assert len(model.train_dataloader()) == 64
    assert len(model.val_dataloader()) == 64
    assert isinstance(trainer.num_val_batches, list)
    assert trainer.num_val_batches[0] == 7
    assert trainer.num_training_batches == 7


@pytest.mark.parametrize("mode", ["val", "test", "predict"])
@pytest.mark.parametrize("limit_batches", [0.1, 10])
def test_eval_limit_batches(pl, mode, limit_batches):
    """test_limit_batches.py::test_eval_limit_batches: ``limit_{val,test,predict}_batches`` cut the loader; the
    original sets the loop's data up through the trainer's internals, this runs the public entry point instead and
    reads the same attributes."""
    limit_eval_batches = f"limit_{mode}_batches"
    dl_hook = f"{mode}_dataloader"
    model = pl.BoringModel()
    eval_loader = getattr(model, dl_hook)()

    trainer = pl.Trainer(**{limit_eval_batches: limit_batches}, logger=False, enable_checkpointing=False)
    if mode == "val":
        trainer.validate(model, verbose=False)
        loader_num_batches = trainer.num_val_batches
        dataloaders = trainer.val_dataloaders
    elif mode == "test":
        trainer.test(model, verbose=False)
        loader_num_batches = trainer.num_test_batches
        dataloaders = trainer.test_dataloaders
    elif mode == "predict":
        trainer.predict(model)
        loader_num_batches = trainer.num_predict_batches
        dataloaders = trainer.predict_dataloaders

    expected_batches = int(limit_batches * len(eval_loader)) if isinstance(limit_batches, float) else limit_batches
    assert loader_num_batches[0] == expected_batches
    assert len(dataloaders) == len(eval_loader)


@pytest.mark.parametrize(
    "argument",
    ["limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches", "overfit_batches"],
)
@pytest.mark.parametrize("value", [1, 1.0])
def test_limit_batches_info_message(pl, caplog, argument, value):
    """test_limit_batches.py::test_limit_batches_info_message: an explicit 1 or 1.0 says which it means."""
    with caplog.at_level(logging.INFO):
        pl.Trainer(**{argument: value})
    assert f"`Trainer({argument}={value})` was configured" in caplog.text
    message = f"configured so {'1' if isinstance(value, int) else '100%'}"
    assert message in caplog.text

    caplog.clear()

    # the message should not appear by default
    with caplog.at_level(logging.INFO):
        pl.Trainer()
    assert message not in caplog.text
