"""Ported from Lightning's tests/tests_pytorch/checkpointing/test_checkpoint_callback_frequency.py (the
single-device cases). ``torch.save`` is mocked there; here each side's checkpoint write (``pl.patch_checkpoint_write``:
``torch.save`` on Lightning, the safetensors writer on the mirror), counted the same way: once a file."""

import pytest


def test_disabled_checkpointing(pl):
    """test_checkpoint_callback_frequency.py::test_disabled_checkpointing: no checkpoint callback at all."""
    trainer = pl.Trainer(logger=False, max_epochs=3, enable_checkpointing=False)
    assert not trainer.checkpoint_callbacks
    trainer.fit(pl.BoringModel())
    assert not trainer.checkpoint_callbacks


@pytest.mark.parametrize(
    ("epochs", "val_check_interval", "expected"), [(1, 1.0, 1), (2, 1.0, 2), (1, 0.25, 4), (2, 0.3, 6)]
)
def test_default_checkpoint_freq(pl, tmp_path, epochs: int, val_check_interval: float, expected: int):
    """test_checkpoint_callback_frequency.py::test_default_checkpoint_freq: the default callback writes once a
    validation."""
    model = pl.BoringModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=epochs,
        enable_model_summary=False,
        val_check_interval=val_check_interval,
        limit_val_batches=1,
        enable_progress_bar=False,
    )
    with pl.patch_checkpoint_write() as save_mock:
        trainer.fit(model)

    assert save_mock.call_count == expected


@pytest.mark.parametrize(
    ("k", "epochs", "val_check_interval", "expected"), [(1, 1, 1.0, 1), (2, 2, 1.0, 2), (2, 1, 0.25, 4), (2, 2, 0.3, 6)]
)
@pytest.mark.parametrize("save_last", [False, True, "link"])
def test_top_k(pl, tmp_path, k, epochs, val_check_interval, expected, save_last):
    """test_checkpoint_callback_frequency.py::test_top_k: a top-k write each validation, plus a last one each with
    save_last=True, a link (no write) with "link"."""

    class TestModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.last_coeff = 10.0

        def training_step(self, batch, batch_idx):
            loss = self.step(pl.tensor([1.0] * 32))
            loss = loss / (loss + 0.0000001)
            loss += self.last_coeff
            self.log("my_loss", loss)
            self.last_coeff *= 0.999
            return loss

    model = TestModel()
    trainer = pl.Trainer(
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="my_loss", save_top_k=k,
                                                save_last=save_last)],
        default_root_dir=tmp_path,
        max_epochs=epochs,
        enable_model_summary=False,
        val_check_interval=val_check_interval,
    )
    with pl.patch_checkpoint_write() as save_mock:
        trainer.fit(model)

    # save_last=True: last epochs are saved every step (so double the save calls)
    expected = expected * 2 if save_last is True else expected
    assert save_mock.call_count == expected
