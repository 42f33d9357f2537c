"""Ported from Lightning's tests/tests_pytorch/loggers/test_tensorboard.py."""

import os
from argparse import Namespace
from unittest import mock

import numpy as np
import pytest
import yaml


def test_tensorboard_hparams_reload(pl, tmp_path):
    """test_tensorboard.py::test_tensorboard_hparams_reload: hparams.yaml holds the saved hyper-parameters."""

    class CustomModel(pl.BoringModel):
        def __init__(self, b1=0.5, b2=0.999):
            super().__init__()
            self.save_hyperparameters()

    trainer = pl.Trainer(max_steps=1, default_root_dir=tmp_path, logger=pl.loggers.TensorBoardLogger(tmp_path))
    model = CustomModel()
    assert trainer.log_dir == trainer.logger.log_dir
    trainer.fit(model)

    assert trainer.log_dir == trainer.logger.log_dir
    folder_path = trainer.log_dir

    with open(os.path.join(folder_path, "hparams.yaml")) as file:
        yaml_params = yaml.safe_load(file)
        assert yaml_params["b1"] == 0.5
        assert yaml_params["b2"] == 0.999
        assert len(yaml_params.keys()) == 2

    assert len(os.listdir(os.path.join(folder_path, "checkpoints"))) == 1


def test_tensorboard_automatic_versioning(pl, tmp_path):
    """test_tensorboard.py::test_tensorboard_automatic_versioning."""
    root_dir = tmp_path / "tb_versioning"
    root_dir.mkdir()
    (root_dir / "version_0").mkdir()
    (root_dir / "version_1").mkdir()
    (root_dir / "version_nonumber").mkdir()
    (root_dir / "other").mkdir()

    logger = pl.loggers.TensorBoardLogger(save_dir=tmp_path, name="tb_versioning")
    assert logger.version == 2


def test_tensorboard_manual_versioning(pl, tmp_path):
    """test_tensorboard.py::test_tensorboard_manual_versioning."""
    root_dir = tmp_path / "tb_versioning"
    root_dir.mkdir()
    (root_dir / "version_0").mkdir()
    (root_dir / "version_1").mkdir()
    (root_dir / "version_2").mkdir()

    logger = pl.loggers.TensorBoardLogger(save_dir=tmp_path, name="tb_versioning", version=1)

    assert logger.version == 1


def test_tensorboard_named_version(pl, tmp_path):
    """test_tensorboard.py::test_tensorboard_named_version: a string version is the folder's name."""
    name = "tb_versioning"
    (tmp_path / name).mkdir()
    expected_version = "2020-02-05-162402"

    logger = pl.loggers.TensorBoardLogger(save_dir=tmp_path, name=name, version=expected_version)
    logger.log_hyperparams({"a": 1, "b": 2, 123: 3, 3.5: 4, 5j: 5})  # Force data to be written

    assert logger.version == expected_version
    assert os.listdir(tmp_path / name) == [expected_version]
    assert os.listdir(tmp_path / name / expected_version)


@pytest.mark.parametrize("name", ["", None])
def test_tensorboard_no_name(pl, tmp_path, name):
    """test_tensorboard.py::test_tensorboard_no_name: versions directly under save_dir."""
    logger = pl.loggers.TensorBoardLogger(save_dir=tmp_path, name=name)
    logger.log_hyperparams({"a": 1, "b": 2, 123: 3, 3.5: 4, 5j: 5})  # Force data to be written
    assert os.path.normpath(logger.root_dir) == str(tmp_path)
    assert os.listdir(tmp_path / "version_0")


def test_tensorboard_log_sub_dir(pl, tmp_path):
    """test_tensorboard.py::test_tensorboard_log_sub_dir: sub_dir, `~` and `$VAR` in log_dir."""

    class TestLogger(pl.loggers.TensorBoardLogger):
        @property
        def version(self):
            return "version"

        @property
        def name(self):
            return "name"

    trainer_args = {"default_root_dir": tmp_path, "max_steps": 1}

    save_dir = tmp_path / "logs"
    logger = TestLogger(save_dir)
    trainer = pl.Trainer(**trainer_args, logger=logger)
    assert trainer.logger.log_dir == os.path.join(save_dir, "name", "version")

    logger = TestLogger(save_dir, sub_dir="sub_dir")
    trainer = pl.Trainer(**trainer_args, logger=logger)
    assert trainer.logger.log_dir == os.path.join(save_dir, "name", "version", "sub_dir")

    save_dir = "~/tmp"
    explicit_save_dir = os.path.expanduser(save_dir)
    logger = TestLogger(save_dir, sub_dir="sub_dir")
    trainer = pl.Trainer(**trainer_args, logger=logger)
    assert trainer.logger.log_dir == os.path.join(explicit_save_dir, "name", "version", "sub_dir")

    with mock.patch.dict(os.environ, {}):
        test_env_dir = "some_directory"
        os.environ["TEST_ENV_DIR"] = test_env_dir
        save_dir = "$TEST_ENV_DIR/tmp"
        explicit_save_dir = f"{test_env_dir}/tmp"
        logger = TestLogger(save_dir, sub_dir="sub_dir")
        trainer = pl.Trainer(**trainer_args, logger=logger)
        assert trainer.logger.log_dir == os.path.join(explicit_save_dir, "name", "version", "sub_dir")


@pytest.mark.parametrize("step_idx", [10, None])
def test_tensorboard_log_metrics(pl, tmp_path, step_idx):
    """test_tensorboard.py::test_tensorboard_log_metrics: numbers and scalar tensors."""
    logger = pl.loggers.TensorBoardLogger(tmp_path)
    metrics = {"float": 0.3, "int": 1, "FloatTensor": pl.tensor(0.1), "IntTensor": pl.tensor(1)}
    logger.log_metrics(metrics, step_idx)


def _hparams(pl):
    return {
        "float": 0.3,
        "int": 1,
        "string": "abc",
        "bool": True,
        "dict": {"a": {"b": "c"}},
        "list": [1, 2, 3],
        "namespace": Namespace(foo=Namespace(bar="buzz")),
        "layer": pl.nn.Linear,
        "tensor": pl.tensor(np.empty((2, 2, 2), dtype=np.float32)),
        "array": np.empty([2, 2, 2]),
    }


def test_tensorboard_log_hyperparams(pl, tmp_path):
    """test_tensorboard.py::test_tensorboard_log_hyperparams: every kind of value Lightning takes (a torch layer
    class: the framework's)."""
    logger = pl.loggers.TensorBoardLogger(tmp_path)
    logger.log_hyperparams(_hparams(pl))


def test_tensorboard_log_hparams_and_metrics(pl, tmp_path):
    """test_tensorboard.py::test_tensorboard_log_hparams_and_metrics."""
    logger = pl.loggers.TensorBoardLogger(tmp_path, default_hp_metric=False)
    metrics = {"abc": pl.tensor([0.54])}
    logger.log_hyperparams(_hparams(pl), metrics)


def test_tensorboard_save_hparams_to_yaml_once(pl, tmp_path):
    """test_tensorboard.py::test_tensorboard_save_hparams_to_yaml_once: hparams.yaml in the log dir, not the
    root."""
    model = pl.BoringModel()
    logger = pl.loggers.TensorBoardLogger(save_dir=tmp_path, default_hp_metric=False)
    trainer = pl.Trainer(max_steps=1, default_root_dir=tmp_path, logger=logger)
    assert trainer.log_dir == trainer.logger.log_dir
    trainer.fit(model)

    hparams_file = "hparams.yaml"
    assert os.path.isfile(os.path.join(trainer.log_dir, hparams_file))
    assert not os.path.isfile(os.path.join(tmp_path, hparams_file))


def test_tensorboard_with_symlink(pl, tmp_path, monkeypatch):
    """test_tensorboard.py::test_tensorboard_with_symlink: empty name, a symbolic-link save_dir, relative paths."""
    monkeypatch.chdir(tmp_path)
    source = os.path.join(".", "lightning_logs")
    dest = os.path.join(".", "sym_lightning_logs")

    os.makedirs(source, exist_ok=True)
    os.symlink(source, dest)

    logger = pl.loggers.TensorBoardLogger(save_dir=dest, name="")
    _ = logger.version


@pytest.mark.parametrize("example_input_array", [False, True])
def test_tensorboard_log_graph(pl, tmp_path, example_input_array):
    """test_tensorboard.py::test_tensorboard_log_graph: log_graph takes the model's example_input_array or an array
    passed in."""
    model = pl.BoringModel()
    input_array = pl.tensor(np.random.rand(2, 32).astype(np.float32)) if example_input_array else None
    if input_array is not None:
        model.example_input_array = None

    logger = pl.loggers.TensorBoardLogger(tmp_path, log_graph=True)
    logger.log_graph(model, input_array)
