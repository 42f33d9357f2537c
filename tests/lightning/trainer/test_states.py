"""Ported from Lightning's tests/tests_pytorch/trainer/test_states.py (TrainerFn, RunningStage and TrainerStatus are
str enums in Lightning: their values are written as the strings they equal)."""

import pytest


def test_initialize_state(pl):
    """test_states.py::test_initialize_state: the state is INITIALIZING after the Trainer is made."""
    trainer = pl.Trainer()
    assert trainer.state == pl.TrainerState(status="initializing", fn=None, stage=None)


@pytest.mark.parametrize(
    "extra_params",
    [pytest.param({"fast_dev_run": True}, id="Fast-Run"), pytest.param({"max_steps": 1}, id="Single-Step")],
)
def test_trainer_fn_while_running(pl, tmp_path, extra_params):
    """test_states.py::test_trainer_fn_while_running: fn, stage and status inside each entry point's hooks."""

    class TestModel(pl.BoringModel):
        def __init__(self, expected_fn, expected_stage):
            super().__init__()
            self.expected_fn = expected_fn
            self.expected_stage = expected_stage
            self.lr = 0.1

        def on_train_batch_start(self, *_):
            assert self.trainer.state.status == "running"
            assert self.trainer.state.fn == self.expected_fn
            assert self.trainer.training

        def on_sanity_check_start(self, *_):
            assert self.trainer.state.status == "running"
            assert self.trainer.state.fn == self.expected_fn
            assert self.trainer.sanity_checking

        def on_validation_batch_start(self, *_):
            assert self.trainer.state.status == "running"
            assert self.trainer.state.fn == self.expected_fn
            assert self.trainer.validating or self.trainer.sanity_checking

        def on_test_batch_start(self, *_):
            assert self.trainer.state.status == "running"
            assert self.trainer.state.fn == self.expected_fn
            assert self.trainer.testing

    trainer = pl.Trainer(default_root_dir=tmp_path, **extra_params)

    model = TestModel("fit", "train")
    trainer.fit(model)
    assert trainer.state.finished

    model = TestModel("validate", "validate")
    trainer.validate(model)
    assert trainer.state.finished

    model = TestModel("test", "test")
    trainer.test(model)
    assert trainer.state.finished


@pytest.mark.parametrize(
    "extra_params",
    [pytest.param({"fast_dev_run": True}, id="Fast-Run"), pytest.param({"max_steps": 1}, id="Single-Step")],
)
def test_interrupt_state_on_keyboard_interrupt(pl, tmp_path, extra_params):
    """test_states.py::test_interrupt_state_on_keyboard_interrupt: a KeyboardInterrupt ends in SystemExit with the
    state INTERRUPTED."""
    model = pl.BoringModel()

    class InterruptCallback(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            raise KeyboardInterrupt

    trainer = pl.Trainer(callbacks=[InterruptCallback()], default_root_dir=tmp_path, **extra_params)

    with pytest.raises(SystemExit):
        trainer.fit(model)
    assert trainer.interrupted
