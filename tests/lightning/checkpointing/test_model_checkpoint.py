"""Ported from Lightning's tests/tests_pytorch/checkpointing/test_model_checkpoint.py.

Checkpoint files end in ``pl.checkpoint_suffix``: ``.ckpt`` on Lightning, ``.safetensors`` on the mirror (MLX
cannot pickle a checkpoint).
"""

import os
import re
import sys
from argparse import Namespace
from datetime import timedelta
from pathlib import Path
from unittest import mock
from unittest.mock import Mock, call, patch

import pytest
import yaml


def log_in_two_methods(pl):
    """Lightning's ``LogInTwoMethods``: ``early_stop_on`` logged in every training step, ``val_acc`` after each
    validation epoch."""

    class LogInTwoMethods(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            self.log("early_stop_on", out["loss"])
            return out

        def on_validation_epoch_end(self):
            self.log("val_acc", pl.tensor(1.23))

    return LogInTwoMethods


def test_model_checkpoint_state_key(pl):
    """test_model_checkpoint.py::test_model_checkpoint_state_key: the state key names monitor, mode and triggers."""
    early_stopping = pl.callbacks.ModelCheckpoint(monitor="val_loss")
    expected_id = (
        "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1,"
        " 'train_time_interval': None}"
    )
    assert early_stopping.state_key == expected_id


@pytest.mark.parametrize("save_top_k", [-1, 0, 1, 2])
def test_model_checkpoint_with_non_string_input(pl, tmp_path, save_top_k: int):
    """test_model_checkpoint.py::test_model_checkpoint_with_non_string_input: dirpath=None is valid and the
    checkpoints go to <default_root_dir>/checkpoints."""
    model = log_in_two_methods(pl)()

    checkpoint = pl.callbacks.ModelCheckpoint(monitor="early_stop_on", dirpath=None, filename="{epoch}",
                                              save_top_k=save_top_k)
    max_epochs = 2
    trainer = pl.Trainer(
        default_root_dir=tmp_path, callbacks=[checkpoint], overfit_batches=0.20, max_epochs=max_epochs, logger=False
    )
    trainer.fit(model)
    assert checkpoint.dirpath == str(tmp_path / "checkpoints")

    if save_top_k == -1:
        ckpt_files = os.listdir(checkpoint.dirpath)
        expected_ckpt_files = [f"epoch={i}{pl.checkpoint_suffix}" for i in range(max_epochs)]
        assert len(ckpt_files) == len(expected_ckpt_files) == max_epochs
        assert set(ckpt_files) == set(expected_ckpt_files)


@pytest.mark.parametrize("save_top_k", [-1, 0, 1, 2])
def test_model_checkpoint_to_yaml(pl, tmp_path, save_top_k: int):
    """test_model_checkpoint.py::test_model_checkpoint_to_yaml: to_yaml writes best_k_models."""
    model = log_in_two_methods(pl)()

    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="early_stop_on", save_top_k=save_top_k)

    trainer = pl.Trainer(default_root_dir=tmp_path, callbacks=[checkpoint], overfit_batches=0.20, max_epochs=2)
    trainer.fit(model)

    path_yaml = tmp_path / "best_k_models.yaml"
    checkpoint.to_yaml(path_yaml)
    with open(path_yaml) as fopen:
        d = yaml.full_load(fopen)
    best_k = dict(checkpoint.best_k_models.items())
    assert d == best_k


@pytest.mark.parametrize(
    ("logger_version", "expected"), [(None, "version_0"), (1, "version_1"), ("awesome", "awesome")]
)
def test_model_checkpoint_path(pl, tmp_path, logger_version, expected: str):
    """test_model_checkpoint.py::test_model_checkpoint_path: "version_" is prefixed only to an integer version."""
    model = log_in_two_methods(pl)()
    logger = pl.loggers.TensorBoardLogger(tmp_path, version=logger_version)

    trainer = pl.Trainer(default_root_dir=tmp_path, overfit_batches=0.2, max_epochs=2, logger=logger)
    trainer.fit(model)

    ckpt_version = Path(trainer.checkpoint_callback.dirpath).parent.name
    assert ckpt_version == expected


def test_model_checkpoint_format_checkpoint_name(pl, tmp_path, monkeypatch):
    """test_model_checkpoint.py::test_model_checkpoint_format_checkpoint_name: Lightning's name templates."""
    ModelCheckpoint = pl.callbacks.ModelCheckpoint
    S = pl.checkpoint_suffix
    model_checkpoint = ModelCheckpoint(dirpath=tmp_path)

    # empty filename:
    ckpt_name = model_checkpoint._format_checkpoint_name("", {"epoch": 3, "step": 2})
    assert ckpt_name == "epoch=3-step=2"

    ckpt_name = model_checkpoint._format_checkpoint_name(None, {"epoch": 3, "step": 2}, prefix="test")
    assert ckpt_name == "test-epoch=3-step=2"

    # no groups case:
    ckpt_name = model_checkpoint._format_checkpoint_name("ckpt", {}, prefix="test")
    assert ckpt_name == "test-ckpt"

    # no prefix
    ckpt_name = model_checkpoint._format_checkpoint_name("{epoch:03d}-{acc}", {"epoch": 3, "acc": 0.03})
    assert ckpt_name == "epoch=003-acc=0.03"

    # one metric name is substring of another
    ckpt_name = model_checkpoint._format_checkpoint_name("{epoch:03d}-{epoch_test:03d}", {"epoch": 3, "epoch_test": 3})
    assert ckpt_name == "epoch=003-epoch_test=003"

    # prefix
    model_checkpoint.CHECKPOINT_JOIN_CHAR = "@"
    ckpt_name = model_checkpoint._format_checkpoint_name("{epoch},{acc:.5f}", {"epoch": 3, "acc": 0.03}, prefix="test")
    assert ckpt_name == "test@epoch=3,acc=0.03000"
    monkeypatch.undo()

    # non-default char for equals sign
    model_checkpoint.CHECKPOINT_EQUALS_CHAR = ":"
    ckpt_name = model_checkpoint._format_checkpoint_name("{epoch:03d}-{acc}", {"epoch": 3, "acc": 0.03})
    assert ckpt_name == "epoch:003-acc:0.03"
    monkeypatch.undo()

    # no dirpath set
    ckpt_name = ModelCheckpoint(monitor="early_stop_on", dirpath=None).format_checkpoint_name({"epoch": 3, "step": 2})
    assert ckpt_name == f"epoch=3-step=2{S}"
    ckpt_name = ModelCheckpoint(monitor="early_stop_on", dirpath="").format_checkpoint_name({"epoch": 5, "step": 4})
    assert ckpt_name == f"epoch=5-step=4{S}"

    # CWD
    ckpt_name = ModelCheckpoint(monitor="early_stop_on", dirpath=".").format_checkpoint_name({"epoch": 3, "step": 4})
    assert ckpt_name == str(Path(".").resolve() / f"epoch=3-step=4{S}")

    # with version
    ckpt = ModelCheckpoint(monitor="early_stop_on", dirpath=tmp_path, filename="name")
    ckpt_name = ckpt.format_checkpoint_name({}, ver=3)
    assert ckpt_name == str(tmp_path / f"name-v3{S}")

    # with prefix
    ckpt_name = ModelCheckpoint(monitor="early_stop_on", dirpath=tmp_path, filename="name").format_checkpoint_name(
        {}, prefix="test"
    )
    assert ckpt_name == str(tmp_path / f"test-name{S}")

    # using slashes
    ckpt = ModelCheckpoint(monitor="early_stop_on", dirpath=None, filename="{epoch}_{val/loss:.5f}")
    ckpt_name = ckpt.format_checkpoint_name({"epoch": 4, "val/loss": 0.03})
    assert ckpt_name == f"epoch=4_val/loss=0.03000{S}"

    # auto_insert_metric_name=False
    ckpt_name = model_checkpoint._format_checkpoint_name(
        "epoch={epoch:03d}-val_acc={val/acc}", {"epoch": 3, "val/acc": 0.03}, auto_insert_metric_name=False
    )
    assert ckpt_name == "epoch=003-val_acc=0.03"

    # dots in the metric name
    ckpt_name = model_checkpoint._format_checkpoint_name(
        "mAP@0.50={val/mAP@0.50:.4f}", {"val/mAP@0.50": 0.2}, auto_insert_metric_name=False
    )
    assert ckpt_name == "mAP@0.50=0.2000"


@pytest.mark.mirror_differs("MLX checkpoints are .safetensors files: the mirror's checkpoint IO refuses another "
                            "extension")
def test_model_checkpoint_file_extension(pl, tmp_path):
    """test_model_checkpoint.py::test_model_checkpoint_file_extension: a subclass's FILE_EXTENSION names the files."""

    class ModelCheckpointExtensionTest(pl.callbacks.ModelCheckpoint):
        FILE_EXTENSION = ".tpkc"

    model = log_in_two_methods(pl)()
    model_checkpoint = ModelCheckpointExtensionTest(
        monitor="early_stop_on", dirpath=tmp_path, save_top_k=1, save_last=True
    )
    trainer = pl.Trainer(default_root_dir=tmp_path, callbacks=[model_checkpoint], max_steps=1, logger=False)
    trainer.fit(model)

    expected = ["epoch=0-step=1.tpkc", "last.tpkc"]
    assert set(expected) == set(os.listdir(tmp_path))


@pytest.mark.parametrize("save_last", [True, "link"])
def test_model_checkpoint_save_last(pl, save_last, tmp_path, monkeypatch):
    """test_model_checkpoint.py::test_model_checkpoint_save_last: save_last keeps one last checkpoint (a file, or a
    link to the newest top-k file)."""
    ModelCheckpoint = pl.callbacks.ModelCheckpoint
    pl.seed_everything()
    model = log_in_two_methods(pl)()
    epochs = 3
    monkeypatch.setattr(ModelCheckpoint, "CHECKPOINT_NAME_LAST", "last-{epoch}")
    model_checkpoint = ModelCheckpoint(monitor="early_stop_on", dirpath=tmp_path, save_top_k=-1, save_last=save_last)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[model_checkpoint],
        max_epochs=epochs,
        limit_train_batches=10,
        limit_val_batches=10,
        logger=False,
    )
    trainer.fit(model)
    last_filename = model_checkpoint._format_checkpoint_name(
        ModelCheckpoint.CHECKPOINT_NAME_LAST, {"epoch": trainer.current_epoch - 1}
    )
    last_filename = last_filename + pl.checkpoint_suffix
    assert str(tmp_path / last_filename) == model_checkpoint.last_model_path
    assert set(os.listdir(tmp_path)) == set(
        [f"epoch={i}-step={j}{pl.checkpoint_suffix}" for i, j in zip(range(epochs), [10, 20, 30])] + [last_filename]
    )
    if save_last == "link":
        assert os.path.islink(tmp_path / last_filename)
    else:
        assert os.path.isfile(tmp_path / last_filename)
    assert os.path.realpath(tmp_path / last_filename) == model_checkpoint._last_checkpoint_saved


def test_model_checkpoint_link_checkpoint(pl, tmp_path):
    """test_model_checkpoint.py::test_model_checkpoint_link_checkpoint: a link replaces a file, link or folder
    there, relative; a copy where links cannot be made."""
    ModelCheckpoint = pl.callbacks.ModelCheckpoint
    trainer = Mock()

    # link doesn't exist
    file = tmp_path / "file"
    file.touch()
    link = tmp_path / "link"
    ModelCheckpoint._link_checkpoint(trainer, filepath=str(file), linkpath=str(link))
    assert os.path.islink(link)
    assert os.path.realpath(link) == str(file)
    assert not os.path.isabs(os.readlink(link))

    # link exists (is a file)
    new_file1 = tmp_path / "new_file1"
    new_file1.touch()
    ModelCheckpoint._link_checkpoint(trainer, filepath=str(new_file1), linkpath=str(link))
    assert os.path.islink(link)
    assert os.path.realpath(link) == str(new_file1)
    assert not os.path.isabs(os.readlink(link))

    # link exists (is a link)
    new_file2 = tmp_path / "new_file2"
    new_file2.touch()
    ModelCheckpoint._link_checkpoint(trainer, filepath=str(new_file2), linkpath=str(link))
    assert os.path.islink(link)
    assert os.path.realpath(link) == str(new_file2)
    assert not os.path.isabs(os.readlink(link))

    # link exists (is a folder)
    folder = tmp_path / "folder"
    folder.mkdir()
    folder_link = tmp_path / "folder_link"
    folder_link.mkdir()
    ModelCheckpoint._link_checkpoint(trainer, filepath=str(folder), linkpath=str(folder_link))
    assert os.path.islink(folder_link)
    assert os.path.realpath(folder_link) == str(folder)
    assert not os.path.isabs(os.readlink(folder_link))

    # link exists (is a link to a folder)
    new_folder = tmp_path / "new_folder"
    new_folder.mkdir()
    ModelCheckpoint._link_checkpoint(trainer, filepath=str(new_folder), linkpath=str(folder_link))
    assert os.path.islink(folder_link)
    assert os.path.realpath(folder_link) == str(new_folder)
    assert not os.path.isabs(os.readlink(folder_link))

    # simulate permission error on Windows (creation of symbolic links requires privileges)
    file = tmp_path / "win_file"
    file.touch()
    link = tmp_path / "win_link"
    module_os = sys.modules[ModelCheckpoint.__module__].os
    with mock.patch.object(module_os, "symlink", Mock(side_effect=OSError)):
        ModelCheckpoint._link_checkpoint(trainer, filepath=str(file), linkpath=str(link))
    assert not os.path.islink(link)
    assert os.path.isfile(link)  # fall back to copying instead of linking


def test_model_checkpoint_link_checkpoint_relative_path(pl, tmp_path, monkeypatch):
    """test_model_checkpoint.py::test_model_checkpoint_link_checkpoint_relative_path: the link is relative."""
    trainer = Mock()
    monkeypatch.chdir(tmp_path)

    folder = Path("x/z/z")
    folder.mkdir(parents=True)
    file = folder / "file"
    file.touch()
    link = folder / "link"
    pl.callbacks.ModelCheckpoint._link_checkpoint(trainer, filepath=str(file.absolute()),
                                                  linkpath=str(link.absolute()))
    assert os.path.islink(link)
    assert Path(os.readlink(link)) == file.relative_to(folder)
    assert not os.path.isabs(os.readlink(link))


def test_invalid_top_k(pl, tmp_path):
    """test_model_checkpoint.py::test_invalid_top_k: a negative save_top_k is a MisconfigurationException."""
    with pytest.raises(pl.MisconfigurationException, match=r".*Must be >= -1"):
        pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-3)


def test_none_monitor_top_k(pl, tmp_path):
    """test_model_checkpoint.py::test_none_monitor_top_k: save_top_k above 1 needs a monitor."""
    ModelCheckpoint = pl.callbacks.ModelCheckpoint
    with pytest.raises(
        pl.MisconfigurationException, match=r"ModelCheckpoint\(save_top_k=3, monitor=None\) is not a valid*"
    ):
        ModelCheckpoint(dirpath=tmp_path, save_top_k=3)
    # These should not fail
    ModelCheckpoint(dirpath=tmp_path, save_top_k=-1)
    ModelCheckpoint(dirpath=tmp_path, save_top_k=0)
    ModelCheckpoint(dirpath=tmp_path, save_top_k=1)


def test_none_monitor_not_alternating(pl, tmp_path):
    """test_model_checkpoint.py::test_none_monitor_not_alternating: monitor=None, top 1 keeps one file of one
    name (not model and model-v1 in turn)."""
    S = pl.checkpoint_suffix

    class ListDirModel(pl.BoringModel):
        def on_train_epoch_start(self):
            if self.current_epoch > 0:
                assert os.listdir(tmp_path) == [f"model{S}"]

    model = ListDirModel()
    model_checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor=None, save_top_k=1, filename="model")
    trainer = pl.Trainer(
        callbacks=model_checkpoint,
        limit_train_batches=1,
        limit_val_batches=0,
        max_epochs=3,
        enable_model_summary=False,
        enable_progress_bar=False,
        logger=False,
    )
    trainer.fit(model)


def test_invalid_every_n_epochs(pl, tmp_path):
    """test_model_checkpoint.py::test_invalid_every_n_epochs: a negative every_n_epochs is refused."""
    ModelCheckpoint = pl.callbacks.ModelCheckpoint
    with pytest.raises(pl.MisconfigurationException, match=r".*Must be >= 0"):
        ModelCheckpoint(dirpath=tmp_path, every_n_epochs=-3)
    # These should not fail
    ModelCheckpoint(dirpath=tmp_path, every_n_epochs=0)
    ModelCheckpoint(dirpath=tmp_path, every_n_epochs=1)
    ModelCheckpoint(dirpath=tmp_path, every_n_epochs=2)


def test_invalid_every_n_train_steps(pl, tmp_path):
    """test_model_checkpoint.py::test_invalid_every_n_train_steps: a negative every_n_train_steps is refused."""
    ModelCheckpoint = pl.callbacks.ModelCheckpoint
    with pytest.raises(pl.MisconfigurationException, match=r".*Must be >= 0"):
        ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=-3)
    # These should not fail
    ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=0)
    ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1)
    ModelCheckpoint(dirpath=tmp_path, every_n_epochs=2)


def test_invalid_trigger_combination(pl, tmp_path):
    """test_model_checkpoint.py::test_invalid_trigger_combination: at most one of every_n_epochs,
    every_n_train_steps and train_time_interval."""
    ModelCheckpoint = pl.callbacks.ModelCheckpoint
    with pytest.raises(pl.MisconfigurationException, match=r".*Combination of parameters every_n_train_steps"):
        ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, every_n_epochs=2)
    with pytest.raises(pl.MisconfigurationException, match=r".*Combination of parameters every_n_train_steps"):
        ModelCheckpoint(train_time_interval=timedelta(minutes=1), every_n_epochs=2)
    with pytest.raises(pl.MisconfigurationException, match=r".*Combination of parameters every_n_train_steps"):
        ModelCheckpoint(train_time_interval=timedelta(minutes=1), every_n_train_steps=2)

    # These should not fail
    ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=0, every_n_epochs=3)
    ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, every_n_epochs=0)
    ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=0, every_n_epochs=0, train_time_interval=timedelta(minutes=1))


def test_none_every_n_train_steps_val_epochs(pl, tmp_path):
    """test_model_checkpoint.py::test_none_every_n_train_steps_val_epochs: the default trigger is every epoch."""
    checkpoint_callback = pl.callbacks.ModelCheckpoint(dirpath=tmp_path)
    assert checkpoint_callback.every_n_epochs == 1
    assert checkpoint_callback._every_n_train_steps == 0


def test_model_checkpoint_save_last_none_monitor(pl, tmp_path):
    """test_model_checkpoint.py::test_model_checkpoint_save_last_none_monitor: monitor=None saves every epoch."""
    S = pl.checkpoint_suffix
    pl.seed_everything()
    model = log_in_two_methods(pl)()

    epochs = 2
    checkpoint_callback = pl.callbacks.ModelCheckpoint(monitor=None, dirpath=tmp_path, save_top_k=-1, save_last=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[checkpoint_callback],
        limit_train_batches=10,
        limit_val_batches=10,
        max_epochs=epochs,
        logger=False,
    )
    trainer.fit(model)

    # these should not be set if monitor is None
    assert checkpoint_callback.monitor is None
    assert checkpoint_callback.best_model_path == str(tmp_path / f"epoch=1-step=20{S}")
    assert checkpoint_callback.last_model_path == str(tmp_path / f"last{S}")
    assert checkpoint_callback.best_model_score is None
    assert checkpoint_callback.best_k_models == {}
    assert checkpoint_callback.kth_best_model_path == ""

    # check that the correct ckpts were created
    expected = [f"epoch={i}-step={j}{S}" for i, j in zip(range(epochs), [10, 20])]
    expected.append(f"last{S}")
    assert set(os.listdir(tmp_path)) == set(expected)
    assert os.path.isfile(tmp_path / f"last{S}")


@pytest.mark.parametrize("every_n_epochs", list(range(4)))
def test_model_checkpoint_every_n_epochs(pl, tmp_path, every_n_epochs):
    """test_model_checkpoint.py::test_model_checkpoint_every_n_epochs: a checkpoint every n epochs, none for 0."""
    model = log_in_two_methods(pl)()
    epochs = 5
    checkpoint_callback = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path, filename="{epoch}", save_top_k=-1, every_n_epochs=every_n_epochs
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[checkpoint_callback],
        max_epochs=epochs,
        limit_train_batches=1,
        limit_val_batches=1,
        logger=False,
    )
    trainer.fit(model)

    # check that the correct ckpts were created, the modulo condition is checked in `ModelCheckpoint`
    expected = ([f"epoch={e}{pl.checkpoint_suffix}" for e in range(epochs) if not (e + 1) % every_n_epochs]
                if every_n_epochs > 0 else [])
    assert set(os.listdir(tmp_path)) == set(expected)


def test_ckpt_every_n_train_steps(pl, tmp_path):
    """test_model_checkpoint.py::test_ckpt_every_n_train_steps: a checkpoint every n training steps."""
    model = log_in_two_methods(pl)()
    every_n_train_steps = 16
    max_epochs = 2
    epoch_length = 64
    checkpoint_callback = pl.callbacks.ModelCheckpoint(
        filename="{step}",
        every_n_epochs=0,
        every_n_train_steps=every_n_train_steps,
        dirpath=tmp_path,
        save_top_k=-1,
        save_last=False,
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        enable_progress_bar=False,
        callbacks=[checkpoint_callback],
        logger=False,
    )

    trainer.fit(model)
    expected = [
        f"step={i}{pl.checkpoint_suffix}"
        for i in range(every_n_train_steps, max_epochs * epoch_length + 1, every_n_train_steps)
    ]
    assert set(os.listdir(tmp_path)) == set(expected)


def test_model_checkpoint_on_exception_run_condition_on_validation_start(pl, tmp_path):
    """test_model_checkpoint.py::test_model_checkpoint_on_exception_run_condition_on_validation_start: no
    checkpoint when the sanity check fails."""

    class TroubledModelSanityCheck(pl.BoringModel):
        def on_validation_start(self) -> None:
            if self.trainer.sanity_checking:
                print("Trouble!")
                raise RuntimeError("Trouble!")

    model = TroubledModelSanityCheck()
    checkpoint_callback = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="sanity_check",
                                                       save_on_exception=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        num_sanity_val_steps=4,
        limit_train_batches=2,
        callbacks=[checkpoint_callback],
        max_epochs=2,
        logger=False,
    )

    with pytest.raises(RuntimeError, match="Trouble!"):
        trainer.fit(model)
    assert not os.path.isfile(tmp_path / f"exception-sanity_check{pl.checkpoint_suffix}")


def test_model_checkpoint_topk_zero(pl, tmp_path):
    """test_model_checkpoint.py::test_model_checkpoint_topk_zero: save_top_k=0 saves only last."""
    model = log_in_two_methods(pl)()
    checkpoint_callback = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=0, save_last=True)
    trainer = pl.Trainer(default_root_dir=tmp_path, callbacks=[checkpoint_callback], max_epochs=2, logger=False)
    trainer.fit(model)
    # these should not be set if monitor is None
    assert checkpoint_callback.monitor is None
    assert checkpoint_callback.best_model_path == ""
    assert checkpoint_callback.best_model_score is None
    assert checkpoint_callback.best_k_models == {}
    assert checkpoint_callback.kth_best_model_path == ""
    # check that only the last ckpt was created
    assert os.listdir(tmp_path) == [f"last{pl.checkpoint_suffix}"]
    assert checkpoint_callback.last_model_path == str(tmp_path / f"last{pl.checkpoint_suffix}")
    # 'last.ckpt' is not a symlink because there are no top-k checkpoints to link
    assert not os.path.islink(checkpoint_callback.last_model_path)


def test_model_checkpoint_topk_all(pl, tmp_path):
    """test_model_checkpoint.py::test_model_checkpoint_topk_all: save_top_k=-1 tracks every checkpoint."""
    S = pl.checkpoint_suffix
    pl.seed_everything(1000)
    epochs = 3

    model = pl.BoringModel()
    checkpoint_callback = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path, filename="{epoch}", monitor="epoch", mode="max", save_top_k=-1
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[checkpoint_callback],
        max_epochs=epochs,
        logger=False,
        val_check_interval=1.0,
    )
    trainer.fit(model)

    assert checkpoint_callback.monitor == "epoch"
    assert checkpoint_callback.best_model_path == str(tmp_path / f"epoch=2{S}")
    assert checkpoint_callback.best_model_score == epochs - 1
    assert len(os.listdir(tmp_path)) == len(checkpoint_callback.best_k_models) == epochs
    assert set(checkpoint_callback.best_k_models.keys()) == {str(tmp_path / f"epoch={i}{S}") for i in range(epochs)}
    assert checkpoint_callback.kth_best_model_path == str(tmp_path / f"epoch=0{S}")


def test_ckpt_metric_names(pl, tmp_path):
    """test_model_checkpoint.py::test_ckpt_metric_names: the file name holds the metric's value."""
    model = log_in_two_methods(pl)()

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        gradient_clip_val=1.0,
        overfit_batches=0.20,
        enable_progress_bar=False,
        limit_train_batches=0.01,
        limit_val_batches=0.01,
        callbacks=[pl.callbacks.ModelCheckpoint(monitor="early_stop_on", dirpath=tmp_path, filename="{val_loss:.2f}")],
    )

    trainer.fit(model)

    # make sure the checkpoint we saved has the metric in the name
    ckpts = os.listdir(tmp_path)
    ckpts = [x for x in ckpts if "val_loss" in x]
    assert len(ckpts) == 1
    val = re.sub("[^0-9.]", "", ckpts[0])
    assert len(val) > 3


def test_default_checkpoint_behavior(pl, tmp_path):
    """test_model_checkpoint.py::test_default_checkpoint_behavior: the default callback saves each epoch and keeps
    the newest."""
    S = pl.checkpoint_suffix
    pl.seed_everything(1234)

    model = log_in_two_methods(pl)()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=3,
        enable_progress_bar=False,
        limit_train_batches=5,
        limit_val_batches=5,
        logger=False,
    )

    with patch.object(trainer, "save_checkpoint", wraps=trainer.save_checkpoint) as save_mock:
        trainer.fit(model)
        results = trainer.test()

    assert len(results) == 1
    save_dir = tmp_path / "checkpoints"
    save_weights_only = trainer.checkpoint_callback.save_weights_only
    save_mock.assert_has_calls([
        call(str(save_dir / f"epoch=0-step=5{S}"), save_weights_only),
        call(str(save_dir / f"epoch=1-step=10{S}"), save_weights_only),
        call(str(save_dir / f"epoch=2-step=15{S}"), save_weights_only),
    ])
    ckpts = os.listdir(save_dir)
    assert len(ckpts) == 1
    assert ckpts[0] == f"epoch=2-step=15{S}"


def test_model_checkpoint_save_last_checkpoint_contents(pl, tmp_path):
    """test_model_checkpoint.py::test_model_checkpoint_save_last_checkpoint_contents: last holds the newest state."""
    S = pl.checkpoint_suffix
    pl.seed_everything(100)
    LogInTwoMethods = log_in_two_methods(pl)
    model = LogInTwoMethods()
    num_epochs = 3
    model_checkpoint = pl.callbacks.ModelCheckpoint(
        monitor="early_stop_on", dirpath=tmp_path, filename="{epoch}", save_top_k=num_epochs, save_last=True
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        callbacks=[model_checkpoint],
        max_epochs=num_epochs,
        limit_train_batches=2,
        limit_val_batches=2,
    )
    trainer.fit(model)

    path_last_epoch = str(tmp_path / f"epoch={num_epochs - 1}{S}")
    path_last = str(tmp_path / f"last{S}")
    assert path_last == model_checkpoint.last_model_path
    assert os.path.isfile(path_last_epoch)
    assert os.path.isfile(path_last)

    ckpt_last_epoch = pl.load_checkpoint(path_last_epoch)
    ckpt_last = pl.load_checkpoint(path_last)

    assert ckpt_last_epoch["epoch"] == ckpt_last["epoch"]
    assert ckpt_last_epoch["global_step"] == ckpt_last["global_step"]

    ckpt_id = (
        "ModelCheckpoint{'monitor': 'early_stop_on', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1,"
        " 'train_time_interval': None}"
    )
    assert ckpt_last["callbacks"][ckpt_id] == ckpt_last_epoch["callbacks"][ckpt_id]

    # it is easier to load the model objects than to iterate over the raw dict of tensors
    model_last_epoch = LogInTwoMethods.load_from_checkpoint(path_last_epoch)
    model_last = LogInTwoMethods.load_from_checkpoint(model_checkpoint.last_model_path)
    for w0, w1 in zip(pl.weights(model_last_epoch), pl.weights(model_last)):
        assert (w0 == w1).all()


@pytest.mark.parametrize("mode", ["min", "max"])
def test_checkpointing_with_nan_as_first(pl, tmp_path, mode):
    """test_model_checkpoint.py::test_checkpointing_with_nan_as_first: a NaN first score is replaced by the next."""
    monitor = [float("nan")]
    monitor += [5, 7, 8] if mode == "max" else [8, 7, 5]

    class CurrentModel(log_in_two_methods(pl)):
        def on_validation_epoch_end(self):
            val_loss = monitor[self.current_epoch]
            self.log("abc", val_loss)

    model = CurrentModel()

    callback = pl.callbacks.ModelCheckpoint(monitor="abc", mode=mode, save_top_k=1, dirpath=tmp_path)

    trainer = pl.Trainer(
        callbacks=[callback],
        default_root_dir=tmp_path,
        val_check_interval=1.0,
        max_epochs=len(monitor),
    )
    trainer.save_checkpoint = Mock()

    trainer.fit(model)

    # check that last one is also the best one
    assert trainer.save_checkpoint.call_count == len(monitor)
    assert mode == "min" and callback.best_model_score == 5 or mode == "max" and callback.best_model_score == 8


def test_checkpoint_repeated_strategy(pl, tmp_path):
    """test_model_checkpoint.py::test_checkpoint_repeated_strategy: resuming from the best checkpoint that ran all
    its steps saves nothing new and logs nothing."""
    S = pl.checkpoint_suffix
    checkpoint_callback = pl.callbacks.ModelCheckpoint(monitor="val_loss", dirpath=tmp_path, filename="{epoch:02d}")

    class ExtendedBoringModel(pl.BoringModel):
        def validation_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("val_loss", loss)

    model = ExtendedBoringModel()
    trainer_kwargs = {
        "max_epochs": 1,
        "limit_train_batches": 2,
        "limit_val_batches": 2,
        "limit_test_batches": 2,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 1,
        "default_root_dir": tmp_path,
        "logger": pl.loggers.CSVLogger(tmp_path),
    }
    trainer = pl.Trainer(**trainer_kwargs, callbacks=[checkpoint_callback])
    trainer.fit(model)
    assert set(os.listdir(tmp_path)) == {f"epoch=00{S}", "lightning_logs"}

    for _idx in range(4):
        # load from checkpoint
        trainer = pl.Trainer(**trainer_kwargs)
        trainer.fit(model, ckpt_path=checkpoint_callback.best_model_path)
        trainer.test(ckpt_path=checkpoint_callback.best_model_path, verbose=False)

        assert set(os.listdir(tmp_path)) == {f"epoch=00{S}", "lightning_logs"}

    # no new versions created after the initial fit, because the ones that resume from ckpt do not log anything
    assert set(os.listdir(tmp_path / "lightning_logs")) == {"version_0"}


def test_val_check_interval_checkpoint_files(pl, tmp_path):
    """test_model_checkpoint.py::test_val_check_interval_checkpoint_files: one file per validation in the epoch."""
    model = log_in_two_methods(pl)()
    model_checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, monitor="val_acc", mode="max")
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        val_check_interval=0.2,
        max_epochs=1,
        limit_train_batches=10,
        callbacks=[model_checkpoint],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model)
    files = {p.name for p in tmp_path.iterdir()}
    assert files == {f"epoch=0-step={s}{pl.checkpoint_suffix}" for s in [2, 4, 6, 8, 10]}


def test_current_score(pl, tmp_path):
    """test_model_checkpoint.py::test_current_score: current_score is the newest score, saved in each checkpoint."""

    class TestModel(pl.BoringModel):
        def training_step(self, *args):
            self.log("foo", (self.current_epoch + 1) / 10)
            return super().training_step(*args)

    model_checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=3, monitor="foo", mode="min")
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=3,
        limit_train_batches=1,
        limit_val_batches=1,
        callbacks=[model_checkpoint],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(TestModel())
    assert model_checkpoint.current_score == 0.3
    ckpts = [pl.load_checkpoint(ckpt) for ckpt in tmp_path.iterdir()]
    ckpts = [
        ckpt["callbacks"][
            "ModelCheckpoint{'monitor': 'foo', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1,"
            " 'train_time_interval': None}"
        ]
        for ckpt in ckpts
    ]
    assert sorted(ckpt["current_score"] for ckpt in ckpts) == [0.1, 0.2, 0.3]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_current_score_when_nan(pl, tmp_path, mode: str):
    """test_model_checkpoint.py::test_current_score_when_nan: a NaN score counts as the worst."""

    class TestModel(pl.BoringModel):
        def training_step(self, *args):
            self.log("foo", float("nan"))
            return super().training_step(*args)

    model_checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=1, monitor="foo", mode=mode)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        callbacks=[model_checkpoint],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(TestModel())
    expected = float("inf" if mode == "min" else "-inf")
    assert model_checkpoint.best_model_score == expected
    assert model_checkpoint.current_score == expected


def test_hparams_type(pl, tmp_path):
    """test_model_checkpoint.py::test_hparams_type (a Namespace; OmegaConf is not installed): the checkpoint
    holds the hyper-parameters as a plain dict."""

    class TestModel(pl.BoringModel):
        def __init__(self, hparams):
            super().__init__()
            self.save_hyperparameters(hparams)

    model_checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=1)
    trainer = pl.Trainer(
        max_epochs=1,
        default_root_dir=tmp_path,
        limit_train_batches=1,
        limit_val_batches=1,
        callbacks=[model_checkpoint],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    hp = {"test_hp_0": 1, "test_hp_1": 2}
    hp = Namespace(**hp)
    model = TestModel(hp)
    trainer.fit(model)
    ckpt = trainer._checkpoint_connector.dump_checkpoint()
    # make sure it's not AttributeDict
    ckpt_params_type = type(ckpt[model.CHECKPOINT_HYPER_PARAMS_KEY])
    assert ckpt_params_type is dict


def test_ckpt_version_after_rerun_new_trainer(pl, tmp_path):
    """test_model_checkpoint.py::test_ckpt_version_after_rerun_new_trainer: a second trainer adds -v1 names."""
    S = pl.checkpoint_suffix
    epochs = 2
    for i in range(epochs):
        mc = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, monitor="epoch", filename="{epoch}")
        trainer = pl.Trainer(
            max_epochs=epochs,
            limit_train_batches=1,
            limit_val_batches=1,
            default_root_dir=tmp_path,
            callbacks=[mc],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(pl.BoringModel())

        # check best_k_models state
        expected = {f"epoch=0-v1{S}", f"epoch=1-v1{S}"} if i else {f"epoch=0{S}", f"epoch=1{S}"}
        assert {Path(f).name for f in mc.best_k_models} == expected

    # check created ckpts
    actual = {f.name for f in tmp_path.iterdir()}
    assert actual == {f"epoch=0{S}", f"epoch=1{S}", f"epoch=0-v1{S}", f"epoch=1-v1{S}"}


def test_ckpt_version_after_rerun_same_trainer(pl, tmp_path):
    """test_model_checkpoint.py::test_ckpt_version_after_rerun_same_trainer: the same trainer's second fit goes on
    numbering from STARTING_VERSION."""
    S = pl.checkpoint_suffix
    mc = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, monitor="epoch", filename="test")
    mc.STARTING_VERSION = 9
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=1,
        default_root_dir=tmp_path,
        callbacks=[mc],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(pl.BoringModel())
    trainer.fit_loop.max_epochs = 4
    trainer.fit(pl.BoringModel())

    ckpt_range = range(mc.STARTING_VERSION, trainer.max_epochs + mc.STARTING_VERSION - 1)
    expected = {f"test{S}", *(f"test-v{i}{S}" for i in ckpt_range)}
    # check best_k_models state
    assert {Path(f).name for f in mc.best_k_models} == expected
    # check created ckpts
    assert set(os.listdir(tmp_path)) == expected


def test_ckpt_version_counter_disabled_after_rerun_new_trainer(pl, tmp_path):
    """test_model_checkpoint.py::test_ckpt_version_counter_disabled_after_rerun_new_trainer: without the version
    counter a second trainer overwrites the files."""
    S = pl.checkpoint_suffix
    epochs = 2
    for _i in range(epochs):
        mc = pl.callbacks.ModelCheckpoint(
            dirpath=tmp_path,
            save_top_k=-1,
            save_last=True,
            monitor="epoch",
            filename="{epoch}",
            enable_version_counter=False,
        )
        trainer = pl.Trainer(
            max_epochs=epochs,
            limit_train_batches=1,
            limit_val_batches=1,
            default_root_dir=tmp_path,
            callbacks=[mc],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(pl.BoringModel())

        # check best_k_models and last state
        assert {Path(f).name for f in mc.best_k_models} == {f"epoch=0{S}", f"epoch=1{S}"}
        assert Path(mc.last_model_path).name == f"last{S}"

    # check created ckpts
    actual = {f.name for f in tmp_path.iterdir()}
    assert actual == {f"epoch=0{S}", f"epoch=1{S}", f"last{S}"}


def test_model_checkpoint_mode_options(pl):
    """test_model_checkpoint.py::test_model_checkpoint_mode_options: an unknown mode is refused."""
    with pytest.raises(pl.MisconfigurationException, match="`mode` can be .* but got unknown_option"):
        pl.callbacks.ModelCheckpoint(mode="unknown_option")


def test_check_val_every_n_epochs_top_k_integration(pl, tmp_path):
    """test_model_checkpoint.py::test_check_val_every_n_epochs_top_k_integration: checkpoints after validation
    epochs only."""
    S = pl.checkpoint_suffix
    model = pl.BoringModel()
    mc = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="epoch", save_top_k=-1, filename="{epoch}")
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        max_epochs=5,
        check_val_every_n_epoch=2,
        callbacks=mc,
        enable_model_summary=False,
        logger=False,
    )
    trainer.fit(model)
    assert set(os.listdir(tmp_path)) == {f"epoch=1{S}", f"epoch=3{S}"}


@pytest.mark.mirror_differs("MLX: `None != mx.array(...)` raises TypeError where torch answers True (the scores are "
                            "arrays, as Lightning's are tensors)")
def test_model_checkpoint_saveload_ckpt(pl, tmp_path):
    """test_model_checkpoint.py::test_model_checkpoint_saveload_ckpt: state_dict and load_state_dict; another
    dirpath restores only best_model_path (with a warning)."""

    def make_assertions(cb_restore, written_ckpt):
        expected_keys = {
            "dirpath": False,
            "best_model_score": False,
            "kth_best_model_path": False,
            "kth_value": False,
            "best_k_models": False,
            "last_model_path": False,
            "best_model_path": True,
        }
        for key, should_match in expected_keys.items():
            if should_match:
                assert getattr(cb_restore, key) == written_ckpt[key]
            else:
                assert getattr(cb_restore, key) != written_ckpt[key]

    class CustomModelCheckpoint(pl.callbacks.ModelCheckpoint):
        def on_load_checkpoint(self, *args, **kwargs):
            assert self.dirpath is not None
            return super().on_load_checkpoint(*args, **kwargs)

    ckpt = {
        "best_model_path": "epoch=10-step=1436.ckpt",
        "best_model_score": pl.tensor(2.246),
        "best_k_models": {"epoch=10-step=1436.ckpt": pl.tensor(2.246)},
        "kth_best_model_path": "epoch=10-step=1436.ckpt",
        "kth_value": pl.tensor(2.246),
        "last_model_path": "last2245.ckpt",
    }

    # test state_dict
    cb_write = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, save_last=True)
    for key, val in ckpt.items():
        setattr(cb_write, key, val)
    written_ckpt = cb_write.state_dict()
    for state in ckpt:
        assert ckpt[state] == written_ckpt[state]

    # Case - 1: another dirpath restores only best_model_path and last_model_path
    cb_restore = pl.callbacks.ModelCheckpoint(dirpath=(tmp_path / "restore"), monitor=None, save_top_k=-1,
                                              save_last=True)
    with pytest.warns(UserWarning, match="The dirpath has changed from*"):
        cb_restore.load_state_dict(written_ckpt)
    make_assertions(cb_restore, written_ckpt)

    # Case - 2: everything runs when dirpath is not initialized explicitly
    cb_restore = CustomModelCheckpoint()
    cb_restore.setup(pl.Trainer(), pl.BoringModel(), stage="fit")
    with pytest.warns(UserWarning, match="The dirpath has changed from*"):
        cb_restore.load_state_dict(written_ckpt)
    make_assertions(cb_restore, written_ckpt)


def test_resume_training_preserves_old_ckpt_last(pl, tmp_path):
    """test_model_checkpoint.py::test_resume_training_preserves_old_ckpt_last: resuming into a new folder keeps the
    old folder's last checkpoint."""
    S = pl.checkpoint_suffix
    model = pl.BoringModel()
    trainer_kwargs = {
        "default_root_dir": tmp_path,
        "max_epochs": 1,
        "limit_train_batches": 3,
        "limit_val_batches": 0,
        "enable_model_summary": False,
        "logger": False,
    }
    mc_kwargs = {
        "filename": "{step}",
        "monitor": "step",
        "mode": "max",
        "save_last": True,
        "save_top_k": 2,
        "every_n_train_steps": 1,
    }
    trainer = pl.Trainer(**trainer_kwargs, callbacks=pl.callbacks.ModelCheckpoint(**mc_kwargs))
    trainer.fit(model)
    # Make sure that the last checkpoint file exists in the dirpath passed (`tmp_path`)
    assert set(os.listdir(tmp_path / "checkpoints")) == {f"last{S}", f"step=2{S}", f"step=3{S}"}

    # Training it for 2 epochs for extra surety, that nothing gets deleted after multiple epochs
    trainer_kwargs["max_epochs"] += 1
    mc_kwargs["dirpath"] = tmp_path / "new"
    trainer = pl.Trainer(**trainer_kwargs, callbacks=pl.callbacks.ModelCheckpoint(**mc_kwargs))
    trainer.fit(model, ckpt_path=(tmp_path / "checkpoints" / f"step=2{S}"))
    # Ensure that the file is not deleted from the old folder
    assert os.path.isfile(tmp_path / "checkpoints" / f"last{S}")


def test_save_last_versioning(pl, tmp_path):
    """test_model_checkpoint.py::test_save_last_versioning: a second run's last is last-v1, a file."""
    S = pl.checkpoint_suffix
    model = pl.BoringModel()
    for _ in range(2):
        mc = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=0, save_last=True)
        trainer = pl.Trainer(
            max_epochs=2,
            callbacks=mc,
            limit_train_batches=1,
            limit_val_batches=0,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
        )
        trainer.fit(model)
    assert {f"last{S}", f"last-v1{S}"} == set(os.listdir(tmp_path))
    # 'last.ckpt' is not a symlink since `save_top_k=0` didn't save any other checkpoints to link to
    assert all(not os.path.islink(tmp_path / path) for path in set(os.listdir(tmp_path)))


def test_last_global_step_saved(pl):
    """test_model_checkpoint.py::test_last_global_step_saved: saving nothing leaves _last_global_step_saved at 0."""
    # this should not save anything
    model_checkpoint = pl.callbacks.ModelCheckpoint(save_top_k=0, save_last=False, monitor="foo")
    trainer = Mock()
    monitor_candidates = {"foo": pl.tensor(123)}
    model_checkpoint._save_topk_checkpoint(trainer, monitor_candidates)
    model_checkpoint._save_last_checkpoint(trainer, monitor_candidates)
    assert model_checkpoint._last_global_step_saved == 0


@pytest.mark.parametrize("every_n_epochs", [0, 5])
def test_save_last_every_n_epochs_interaction(pl, tmp_path, every_n_epochs):
    """test_model_checkpoint.py::test_save_last_every_n_epochs_interaction: save_last ignores every_n_epochs."""
    mc = pl.callbacks.ModelCheckpoint(every_n_epochs=every_n_epochs, save_last=True, save_top_k=0,
                                      save_on_train_epoch_end=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        callbacks=mc,
        limit_train_batches=1,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    model = pl.BoringModel()
    with patch.object(trainer, "save_checkpoint") as save_mock:
        trainer.fit(model)
    assert mc.last_model_path  # a "last" ckpt was saved
    assert save_mock.call_count == trainer.max_epochs - 1


@pytest.mark.parametrize("same_resume_folder", [True, False])
def test_resume_and_old_checkpoint_files_remain(pl, same_resume_folder, tmp_path):
    """test_model_checkpoint.py::test_resume_and_old_checkpoint_files_remain: top-k never deletes the checkpoint
    resumed from, nor files of another folder."""
    S = pl.checkpoint_suffix
    model = pl.BoringModel()
    trainer_kwargs = {
        "default_root_dir": tmp_path,
        "limit_train_batches": 10,
        "limit_val_batches": 0,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
    }
    first = tmp_path / "first"
    second = tmp_path / "second"
    new_dirpath = first if same_resume_folder else second

    # Generate checkpoints in the first folder
    callback = pl.callbacks.ModelCheckpoint(dirpath=first, monitor="step", mode="max", save_top_k=2,
                                            every_n_train_steps=2)
    trainer = pl.Trainer(callbacks=callback, max_steps=5, **trainer_kwargs)
    trainer.fit(model)
    assert set(os.listdir(first)) == {f"epoch=0-step=2{S}", f"epoch=0-step=4{S}"}

    # Continue training from checkpoint
    callback = pl.callbacks.ModelCheckpoint(dirpath=new_dirpath, monitor="step", mode="max", save_top_k=2,
                                            every_n_train_steps=2)
    trainer = pl.Trainer(callbacks=callback, max_steps=8, **trainer_kwargs)
    trainer.fit(model, ckpt_path=str(first / f"epoch=0-step=4{S}"))
    if same_resume_folder:
        assert set(os.listdir(first)) == {
            f"epoch=0-step=4{S}",  # do not delete checkpoint from which we resume from
            f"epoch=0-step=6{S}",
            f"epoch=0-step=8{S}",
        }
    else:
        assert set(os.listdir(first)) == {f"epoch=0-step=2{S}", f"epoch=0-step=4{S}"}  # no files deleted
        assert set(os.listdir(second)) == {f"epoch=0-step=6{S}", f"epoch=0-step=8{S}"}


@pytest.mark.parametrize(
    ("name", "extension", "folder_contents", "expected"),
    [
        ("last", ".ckpt", {}, {}),
        ("any", ".any", {}, {}),
        ("last", ".ckpt", {"last"}, {}),
        ("any", ".any", {"last"}, {}),
        ("last", ".ckpt", {"last", "last.ckpt"}, {"last.ckpt"}),
        ("other", ".pt", {"last", "last.pt", "other.pt"}, {"other.pt"}),
        ("last", ".ckpt", {"log.txt", "last-v0.ckpt", "last-v1.ckpt"}, {"last-v0.ckpt", "last-v1.ckpt"}),
        ("other", ".pt", {"log.txt", "last-v0.ckpt", "other-v0.pt", "other-v1.pt"}, {"other-v0.pt", "other-v1.pt"}),
    ],
)
def test_find_last_checkpoints(pl, name, extension, folder_contents, expected, tmp_path):
    """test_model_checkpoint.py::test_find_last_checkpoints: the files named CHECKPOINT_NAME_LAST[-vN] with the
    callback's FILE_EXTENSION."""
    for file in folder_contents:
        (tmp_path / file).touch()

    trainer = pl.Trainer()
    callback = pl.callbacks.ModelCheckpoint(dirpath=tmp_path)
    callback.CHECKPOINT_NAME_LAST = name
    callback.FILE_EXTENSION = extension
    files = callback._find_last_checkpoints(trainer)
    assert files == {str(tmp_path / p) for p in expected}


def test_expand_home(pl):
    """test_model_checkpoint.py::test_expand_home: "~" in dirpath is the home folder."""
    ModelCheckpoint = pl.callbacks.ModelCheckpoint
    home_root = Path.home()

    checkpoint = ModelCheckpoint(dirpath="~/checkpoints")
    assert checkpoint.dirpath == str(home_root / "checkpoints")
    checkpoint = ModelCheckpoint(dirpath=Path("~/checkpoints"))
    assert checkpoint.dirpath == str(home_root / "checkpoints")

    # it is possible to have a folder with the name `~`
    checkpoint = ModelCheckpoint(dirpath="./~/checkpoints")
    assert checkpoint.dirpath == str(Path.cwd() / "~" / "checkpoints")


def test_save_last_without_save_on_train_epoch_and_without_val(pl, tmp_path):
    """test_model_checkpoint.py::test_save_last_without_save_on_train_epoch_and_without_val: save_last writes last
    in a run without validation even when saving waits for validation."""
    model = pl.BoringModel()
    model.validation_step = None
    model.val_dataloader = None

    checkpoint_callback = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path,
        save_last=True,
        save_on_train_epoch_end=False,
    )

    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[checkpoint_callback],
        logger=False,
        enable_progress_bar=False,
    )

    trainer.fit(model)

    # save_last=True should always save last.ckpt
    assert (tmp_path / f"last{pl.checkpoint_suffix}").exists()


def test_save_last_only_when_checkpoint_saved(pl, tmp_path):
    """test_model_checkpoint.py::test_save_last_only_when_checkpoint_saved: last is written only with a top-k
    checkpoint."""

    class SelectiveModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.validation_step_outputs = []

        def validation_step(self, batch, batch_idx):
            outputs = super().validation_step(batch, batch_idx)
            epoch = self.trainer.current_epoch
            loss = pl.tensor(1.0 - epoch * 0.1) if epoch % 2 == 0 else pl.tensor(1.0 + epoch * 0.1)
            outputs["val_loss"] = loss
            self.validation_step_outputs.append(outputs)
            return outputs

        def on_validation_epoch_end(self):
            if self.validation_step_outputs:
                avg_loss = pl.stack([x["val_loss"] for x in self.validation_step_outputs]).mean()
                self.log("val_loss", avg_loss)
                self.validation_step_outputs.clear()

    model = SelectiveModel()

    checkpoint_callback = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path,
        filename="best-{epoch}-{val_loss:.2f}",
        monitor="val_loss",
        save_last=True,
        save_top_k=1,
        mode="min",
        every_n_epochs=1,
        save_on_train_epoch_end=False,
    )

    trainer = pl.Trainer(
        max_epochs=4,
        callbacks=[checkpoint_callback],
        logger=False,
        enable_progress_bar=False,
        limit_train_batches=2,
        limit_val_batches=2,
        enable_checkpointing=True,
    )

    trainer.fit(model)

    checkpoint_files = list(tmp_path.glob(f"*{pl.checkpoint_suffix}"))
    checkpoint_names = [f.name for f in checkpoint_files]
    assert f"last{pl.checkpoint_suffix}" in checkpoint_names, "last should exist since checkpoints were saved"
    expected_files = 2  # best checkpoint + last.ckpt
    assert len(checkpoint_files) == expected_files, (
        f"Expected {expected_files} files, got {len(checkpoint_files)}: {checkpoint_names}"
    )
