"""Ported from Lightning's tests/tests_pytorch/models/test_restore.py (the single-device cases without the sklearn
models; checkpoint files through ``pl.checkpoint_suffix``)."""

import glob
import os
import pickle
from typing import Generic, TypeVar

import cloudpickle
import pytest


def restore_classes(pl):
    """Lightning's ``ModelTrainerPropertyParity``, ``ValTestLossBoringModel`` and its generic subclass, on ``pl``."""

    class ModelTrainerPropertyParity(pl.Callback):
        def _check_properties(self, trainer, pl_module):
            assert trainer.global_step == pl_module.global_step
            assert trainer.current_epoch == pl_module.current_epoch

        def on_train_start(self, trainer, pl_module):
            self._check_properties(trainer, pl_module)

        def on_train_batch_start(self, trainer, pl_module, *_):
            self._check_properties(trainer, pl_module)

        def on_train_batch_end(self, trainer, pl_module, *_):
            self._check_properties(trainer, pl_module)

        def on_train_end(self, trainer, pl_module):
            self._check_properties(trainer, pl_module)

    class ValTestLossBoringModel(pl.BoringModel):
        def __init__(self, batch_size=4):
            super().__init__()
            self.save_hyperparameters()

        def validation_step(self, batch, batch_idx):
            out = super().validation_step(batch, batch_idx)
            self.log("val_loss", out["x"])
            return out

        def test_step(self, batch, batch_idx):
            out = super().test_step(batch, batch_idx)
            self.log("test_loss", out["y"])
            return out

    T = TypeVar("T")

    class GenericParentValTestLossBoringModel(Generic[T], ValTestLossBoringModel):
        def __init__(self, batch_size: int = 4):
            super().__init__(batch_size=batch_size)

    class GenericValTestLossBoringModel(GenericParentValTestLossBoringModel[int]):
        pass

    return ModelTrainerPropertyParity, ValTestLossBoringModel, GenericValTestLossBoringModel


def test_model_properties_fit_ckpt_path(pl, tmp_path):
    """test_restore.py::test_model_properties_fit_ckpt_path: current_epoch and global_step agree on the module and
    the trainer, also when resumed."""
    ModelTrainerPropertyParity = restore_classes(pl)[0]
    model = pl.BoringModel()
    checkpoint_callback = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer_args = {
        "default_root_dir": tmp_path,
        "max_epochs": 1,
        "limit_train_batches": 2,
        "limit_val_batches": 2,
        "logger": False,
        "callbacks": [checkpoint_callback, ModelTrainerPropertyParity()],  # this performs the assertions
    }
    trainer = pl.Trainer(**trainer_args)
    trainer.fit(model)

    trainer_args.update(max_epochs=2)
    trainer = pl.Trainer(**trainer_args)
    trainer.fit(model, ckpt_path=str(tmp_path / f"last{pl.checkpoint_suffix}"))


def test_correct_step_and_epoch(pl, tmp_path):
    """test_restore.py::test_correct_step_and_epoch: a checkpoint saved after fit resumes at its epoch and step."""
    model = pl.BoringModel()
    first_max_epochs = 2
    train_batches = 2
    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_epochs=first_max_epochs, limit_train_batches=train_batches, limit_val_batches=0
    )
    assert trainer.current_epoch == 0
    assert trainer.global_step == 0

    trainer.fit(model)
    assert trainer.current_epoch == first_max_epochs
    assert trainer.global_step == first_max_epochs * train_batches

    # save checkpoint after loop ends, training end called, epoch count increased
    ckpt_path = str(tmp_path / f"model{pl.checkpoint_suffix}")
    trainer.save_checkpoint(ckpt_path)

    ckpt = pl.load_checkpoint(ckpt_path)
    assert ckpt["epoch"] == first_max_epochs
    assert ckpt["global_step"] == first_max_epochs * train_batches

    max_epochs = first_max_epochs + 2
    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_epochs=max_epochs, limit_train_batches=train_batches, limit_val_batches=0
    )
    # the ckpt state is not loaded at this point
    assert trainer.current_epoch == 0
    assert trainer.global_step == 0

    class TestModel(pl.BoringModel):
        def on_train_start(self) -> None:
            assert self.trainer.current_epoch == first_max_epochs
            assert self.trainer.global_step == first_max_epochs * train_batches
            assert self.trainer.fit_loop.epoch_loop._batches_that_stepped == first_max_epochs * train_batches

    trainer.fit(TestModel(), ckpt_path=ckpt_path)
    assert trainer.current_epoch == max_epochs
    assert trainer.global_step == max_epochs * train_batches
    assert trainer.fit_loop.epoch_loop._batches_that_stepped == max_epochs * train_batches


def test_fit_twice(pl, tmp_path):
    """test_restore.py::test_fit_twice: a second fit of the same trainer goes on from the first's epoch."""
    epochs = []

    class TestModel(pl.BoringModel):
        def on_train_epoch_end(self, *_):
            epochs.append(self.current_epoch)

    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=1,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.fit(TestModel())
    trainer.fit_loop.max_epochs = 4
    trainer.fit(TestModel())
    assert epochs == [0, 1, 2, 3]


def test_try_resume_from_non_existing_checkpoint(pl, tmp_path):
    """test_restore.py::test_try_resume_from_non_existing_checkpoint: a missing ckpt_path is FileNotFoundError."""
    model = pl.BoringModel()
    trainer = pl.Trainer(logger=False)

    with pytest.raises(FileNotFoundError, match="Checkpoint file not found"):
        trainer.fit(model, ckpt_path=str(tmp_path / f"non_existing{pl.checkpoint_suffix}"))


@pytest.mark.parametrize("model_template", ["ValTestLossBoringModel", "GenericValTestLossBoringModel"])
def test_load_model_from_checkpoint(pl, tmp_path, model_template):
    """test_restore.py::test_load_model_from_checkpoint: a checkpoint reloads hparams and weights, and tests."""
    _, ValTestLossBoringModel, GenericValTestLossBoringModel = restore_classes(pl)
    model_template = {"ValTestLossBoringModel": ValTestLossBoringModel,
                      "GenericValTestLossBoringModel": GenericValTestLossBoringModel}[model_template]
    model = model_template()

    trainer_options = {
        "enable_progress_bar": False,
        "max_epochs": 2,
        "limit_train_batches": 2,
        "limit_val_batches": 2,
        "limit_test_batches": 2,
        "callbacks": [pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=-1)],
        "default_root_dir": tmp_path,
        "accelerator": "cpu",
    }

    trainer = pl.Trainer(**trainer_options)
    trainer.fit(model)
    trainer.test(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"

    last_checkpoint = sorted(glob.glob(os.path.join(trainer.checkpoint_callback.dirpath,
                                                    f"*{pl.checkpoint_suffix}")))[-1]

    ckpt = pl.load_checkpoint(last_checkpoint)
    assert model_template.CHECKPOINT_HYPER_PARAMS_KEY in ckpt, "hyper_parameters missing from checkpoints"

    pretrained_model = model_template.load_from_checkpoint(last_checkpoint)

    for k, v in model.hparams.items():
        assert getattr(pretrained_model.hparams, k) == v

    for old_p, new_p in zip(pl.weights(model), pl.weights(pretrained_model)):
        assert (old_p == new_p).all(), "loaded weights are not the same as the saved weights"

    new_trainer = pl.Trainer(**trainer_options)
    new_trainer.test(pretrained_model)


def test_model_saving_loading(pl, tmp_path):
    """test_restore.py::test_model_saving_loading: a module reloaded with its hparams.yaml predicts the same."""
    model = pl.BoringModel()

    logger = pl.loggers.TensorBoardLogger(tmp_path, name="lightning_logs")

    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        logger=logger,
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path)],
        default_root_dir=tmp_path,
    )
    trainer.fit(model)

    dataloaders = model.test_dataloader()
    batch = next(iter(dataloaders))
    batch = pl.tensor(pl.np.asarray(batch))

    model.eval()
    pred_before_saving = model(batch)

    new_weights_path = os.path.join(tmp_path, f"save_test{pl.checkpoint_suffix}")
    trainer.save_checkpoint(new_weights_path)

    hparams_path = os.path.join(tmp_path, logger.name, f"version_{logger.version}")
    hparams_path = os.path.join(hparams_path, "hparams.yaml")
    model_2 = pl.BoringModel.load_from_checkpoint(checkpoint_path=new_weights_path, hparams_file=hparams_path)
    model_2.eval()

    new_pred = model_2(batch)
    assert (pl.to_numpy(pred_before_saving) == pl.to_numpy(new_pred)).all()


def test_strict_model_load_more_params(pl, tmp_path):
    """test_restore.py::test_strict_model_load_more_params (the local file): a checkpoint with more weights loads
    when not strict, is torch's error when strict."""
    model = pl.BoringModel()
    # Extra layer
    model.c_d3 = pl.nn.Linear(32, 32)

    logger = pl.loggers.TensorBoardLogger(tmp_path, name="lightning_logs")

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        logger=logger,
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path)],
    )
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"

    new_weights_path = os.path.join(tmp_path, f"save_test{pl.checkpoint_suffix}")
    trainer.save_checkpoint(new_weights_path)

    hparams_path = os.path.join(tmp_path, logger.name, f"version_{logger.version}", "hparams.yaml")
    ckpt_path = new_weights_path

    pl.BoringModel.load_from_checkpoint(checkpoint_path=ckpt_path, hparams_file=hparams_path, strict=False)

    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "c_d3.weight", "c_d3.bias"'):
        pl.BoringModel.load_from_checkpoint(checkpoint_path=ckpt_path, hparams_file=hparams_path, strict=True)


def test_strict_model_load_less_params(pl, tmp_path):
    """test_restore.py::test_strict_model_load_less_params (the local file): a checkpoint with fewer weights loads
    when not strict, is torch's error when strict."""
    model = pl.BoringModel()

    logger = pl.loggers.TensorBoardLogger(tmp_path, name="lightning_logs")

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=2,
        logger=logger,
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path)],
    )
    trainer.fit(model)

    assert trainer.state.finished, f"Training failed with {trainer.state}"

    new_weights_path = os.path.join(tmp_path, f"save_test{pl.checkpoint_suffix}")
    trainer.save_checkpoint(new_weights_path)

    hparams_path = os.path.join(tmp_path, logger.name, f"version_{logger.version}", "hparams.yaml")
    ckpt_path = new_weights_path

    class CurrentModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.c_d3 = pl.nn.Linear(7, 7)

    CurrentModel.load_from_checkpoint(checkpoint_path=ckpt_path, hparams_file=hparams_path, strict=False)

    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "c_d3.weight", "c_d3.bias"'):
        CurrentModel.load_from_checkpoint(checkpoint_path=ckpt_path, hparams_file=hparams_path, strict=True)


def test_model_pickle(pl, tmp_path):
    """test_restore.py::test_model_pickle: a module pickles."""
    model = pl.BoringModel()
    pickle.dumps(model)
    cloudpickle.dumps(model)
