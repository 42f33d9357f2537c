"""Ported from Lightning's tests/tests_pytorch/trainer/flags/test_min_max_epochs.py."""

import warnings

import pytest


@pytest.mark.parametrize(
    ("min_epochs", "max_epochs", "min_steps", "max_steps"),
    [
        (None, 3, None, -1),
        (None, None, None, 20),
        (None, 3, None, 20),
        (None, None, 10, 20),
        (1, 3, None, -1),
        (1, None, None, 20),
        (None, 3, 10, -1),
    ],
)
def test_min_max_steps_epochs(pl, tmp_path, min_epochs, max_epochs, min_steps, max_steps):
    """test_min_max_epochs.py::test_min_max_steps_epochs: max_steps can be used without max_epochs."""
    model = pl.BoringModel()

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        min_epochs=min_epochs,
        max_epochs=max_epochs,
        min_steps=min_steps,
        max_steps=max_steps,
        enable_model_summary=False,
    )
    trainer.fit(model)

    # check training stopped at max_epochs or max_steps
    if trainer.max_steps and not trainer.max_epochs:
        assert trainer.global_step == trainer.max_steps


@pytest.mark.mirror_differs("not yet: a training_step returning None (issue 31 item 6)")
def test_max_epochs_not_set_warning(pl):
    """test_min_max_epochs.py::test_max_epochs_not_set_warning: a warning only when `max_epochs` was not set."""

    class CustomModel(pl.BoringModel):
        def training_step(self, *args, **kwargs):
            self.trainer.should_stop = True

    match = "`max_epochs` was not set. Setting it to 1000 epochs."

    model = CustomModel()
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=None, limit_train_batches=1)
    with pytest.warns(UserWarning, match=match):
        trainer.fit(model)

    assert trainer.max_epochs == 1000
    assert trainer.current_epoch == 1

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=match)
        pl.Trainer(fast_dev_run=True)
        pl.Trainer(fast_dev_run=1)
