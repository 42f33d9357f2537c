"""Ported from Lightning's tests/tests_pytorch/core/test_datamodules.py: the datamodule's hyper-parameters, its
state in checkpoints, pickling and dataclass datamodules (the loader and hook cases belong to the data port)."""

import pickle
from argparse import Namespace
from dataclasses import dataclass
from typing import Any


def test_hooks_no_recursion_error(pl):
    """test_datamodules.py::test_hooks_no_recursion_error: many datamodules, their hooks called, no recursion."""

    class DummyDM(pl.LightningDataModule):
        def setup(self, *args, **kwargs):
            pass

        def prepare_data(self, *args, **kwargs):
            pass

    for _ in range(1005):
        dm = DummyDM()
        dm.setup()
        dm.prepare_data()


def test_helper_boringdatamodule(pl):
    """test_datamodules.py::test_helper_boringdatamodule: prepare_data and setup("fit")."""
    dm = pl.BoringDataModule()
    dm.prepare_data()
    dm.setup("fit")


def test_helper_boringdatamodule_with_verbose_setup(pl):
    """test_datamodules.py::test_helper_boringdatamodule_with_verbose_setup: setup for fit, then for test."""
    dm = pl.BoringDataModule()
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")


def test_dm_pickle_after_init(pl):
    """test_datamodules.py::test_dm_pickle_after_init: a datamodule pickles."""
    dm = pl.BoringDataModule()
    pickle.dumps(dm)


def test_dm_checkpoint_save_and_load(pl, tmp_path):
    """test_datamodules.py::test_dm_checkpoint_save_and_load: the datamodule's state_dict is in the checkpoint
    under its class name and comes back to load_state_dict, whatever the entry point."""

    class CustomBoringModel(pl.BoringModel):
        def validation_step(self, batch, batch_idx):
            out = super().validation_step(batch, batch_idx)
            self.log("early_stop_on", out["x"])
            return out

    class CustomBoringDataModule(pl.BoringDataModule):
        def state_dict(self) -> dict[str, Any]:
            return {"my": "state_dict"}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.my_state_dict = state_dict

    dm = CustomBoringDataModule()
    model = CustomBoringModel()

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        enable_model_summary=False,
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="early_stop_on")],
    )

    trainer.fit(model, datamodule=dm)
    checkpoint_path = list(trainer.checkpoint_callback.best_k_models.keys())[0]
    checkpoint = pl.load_checkpoint(checkpoint_path)
    assert dm.__class__.__qualname__ in checkpoint
    assert checkpoint[dm.__class__.__qualname__] == {"my": "state_dict"}

    for trainer_fn in ("fit", "validate", "test", "predict"):  # Lightning's TrainerFn values
        trainer.state.fn = trainer_fn
        trainer._checkpoint_connector._restore_modules_and_callbacks(checkpoint_path)
        assert dm.my_state_dict == {"my": "state_dict"}


def test_hyperparameters_saving(pl):
    """test_datamodules.py::test_hyperparameters_saving: every argument, or one container, as hparams."""

    class DataModuleWithHparams_0(pl.LightningDataModule):
        def __init__(self, arg0, arg1, kwarg0=None):
            super().__init__()
            self.save_hyperparameters()

    class DataModuleWithHparams_1(pl.LightningDataModule):
        def __init__(self, arg0, *args, **kwargs):
            super().__init__()
            self.save_hyperparameters(arg0)

    data = DataModuleWithHparams_0(10, "foo", kwarg0="bar")
    assert data.hparams == pl.AttributeDict({"arg0": 10, "arg1": "foo", "kwarg0": "bar"})

    data = DataModuleWithHparams_1(Namespace(**{"hello": "world"}), "foo", kwarg0="bar")
    assert data.hparams == pl.AttributeDict({"hello": "world"})

    data = DataModuleWithHparams_1({"hello": "world"}, "foo", kwarg0="bar")
    assert data.hparams == pl.AttributeDict({"hello": "world"})


def test_define_as_dataclass(pl):
    """test_datamodules.py::test_define_as_dataclass: a dataclass datamodule keeps its dataclass methods."""

    class BoringDataModule(pl.LightningDataModule):
        def __init__(self, foo=None):
            super().__init__()

    @dataclass(init=True, repr=True, eq=True, order=True, unsafe_hash=True, frozen=False)
    class BoringDataModule1(BoringDataModule):
        batch_size: int
        foo: int = 2

        def __post_init__(self):
            super().__init__(foo=self.foo)

    assert BoringDataModule1(batch_size=64).foo == 2
    assert BoringDataModule1(batch_size=32)
    assert hasattr(BoringDataModule1, "__repr__")
    assert BoringDataModule1(batch_size=32) == BoringDataModule1(batch_size=32)

    @dataclass
    class BoringDataModule2(pl.LightningDataModule):
        batch_size: int

    assert BoringDataModule2(batch_size=32)
    assert hasattr(BoringDataModule2, "__repr__")
    assert BoringDataModule2(batch_size=32).prepare_data() is None
    assert BoringDataModule2(batch_size=32) == BoringDataModule2(batch_size=32)
