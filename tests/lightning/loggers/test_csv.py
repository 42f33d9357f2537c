"""Ported from Lightning's tests/tests_pytorch/loggers/test_csv.py."""

import os
from unittest.mock import MagicMock

import pytest


def test_automatic_versioning(pl, tmp_path):
    """test_csv.py::test_automatic_versioning."""
    (tmp_path / "exp" / "version_0").mkdir(parents=True)
    (tmp_path / "exp" / "version_1").mkdir()
    (tmp_path / "exp" / "version_nonumber").mkdir()
    (tmp_path / "exp" / "other").mkdir()

    logger = pl.loggers.CSVLogger(save_dir=tmp_path, name="exp")

    assert logger.version == 2


def test_manual_versioning(pl, tmp_path):
    """test_csv.py::test_manual_versioning."""
    root_dir = tmp_path / "exp"
    (root_dir / "version_0").mkdir(parents=True)
    (root_dir / "version_1").mkdir()
    (root_dir / "version_2").mkdir()

    logger = pl.loggers.CSVLogger(save_dir=tmp_path, name="exp", version=1)

    assert logger.version == 1


def test_manual_versioning_file_exists(pl, tmp_path):
    """test_csv.py::test_manual_versioning_file_exists: a warning, and the existing metrics file goes."""
    (tmp_path / "exp" / "version_0").mkdir(parents=True)
    previous_metrics_file = tmp_path / "exp" / "version_0" / "metrics.csv"
    previous_metrics_file.touch()

    logger = pl.loggers.CSVLogger(save_dir=tmp_path, name="exp", version=0)
    assert previous_metrics_file.exists()
    with pytest.warns(UserWarning, match="Experiment logs directory .* exists and is not empty"):
        _ = logger.experiment
    assert not previous_metrics_file.exists()


def test_named_version(pl, tmp_path):
    """test_csv.py::test_named_version."""
    exp_name = "exp"
    (tmp_path / exp_name).mkdir()
    expected_version = "2020-02-05-162402"

    logger = pl.loggers.CSVLogger(save_dir=tmp_path, name=exp_name, version=expected_version)
    logger.log_hyperparams({"a": 1, "b": 2})
    assert logger.version == expected_version
    assert os.listdir(tmp_path / exp_name) == [expected_version]
    assert os.listdir(tmp_path / exp_name / expected_version)


@pytest.mark.parametrize("name", ["", None])
def test_no_name(pl, tmp_path, name):
    """test_csv.py::test_no_name."""
    logger = pl.loggers.CSVLogger(save_dir=tmp_path, name=name)
    logger.log_hyperparams()
    assert os.path.normpath(logger.root_dir) == str(tmp_path)
    assert os.listdir(tmp_path / "version_0")


@pytest.mark.parametrize("step_idx", [10, None])
def test_log_metrics(pl, tmp_path, step_idx):
    """test_csv.py::test_log_metrics: one header line, one row."""
    logger = pl.loggers.CSVLogger(tmp_path)
    metrics = {"float": 0.3, "int": 1, "FloatTensor": pl.tensor(0.1), "IntTensor": pl.tensor(1)}
    logger.log_metrics(metrics, step_idx)
    logger.save()

    path_csv = os.path.join(logger.log_dir, "metrics.csv")
    with open(path_csv) as fp:
        lines = fp.readlines()
    assert len(lines) == 2
    assert all(n in lines[0] for n in metrics)


def test_log_hyperparams(pl, tmp_path):
    """test_csv.py::test_log_hyperparams: hparams.yaml holds every name (a torch layer class: the framework's)."""
    logger = pl.loggers.CSVLogger(tmp_path)
    hparams = {
        "float": 0.3,
        "int": 1,
        "string": "abc",
        "bool": True,
        "dict": {"a": {"b": "c"}},
        "list": [1, 2, 3],
        "layer": pl.nn.Linear,
    }
    logger.log_hyperparams(hparams)

    path_yaml = os.path.join(logger.log_dir, "hparams.yaml")
    params = pl.module.core.saving.load_hparams_from_yaml(path_yaml)
    assert all(n in params for n in hparams)


def test_flush_n_steps(pl, tmp_path):
    """test_csv.py::test_flush_n_steps."""
    logger = pl.loggers.CSVLogger(tmp_path, flush_logs_every_n_steps=2)
    metrics = {"float": 0.3, "int": 1, "FloatTensor": pl.tensor(0.1), "IntTensor": pl.tensor(1)}
    logger.save = MagicMock()
    logger.log_metrics(metrics, step=0)

    logger.save.assert_not_called()
    logger.log_metrics(metrics, step=1)
    logger.save.assert_called_once()


def test_metrics_reset_after_save(pl, tmp_path):
    """test_csv.py::test_metrics_reset_after_save."""
    logger = pl.loggers.CSVLogger(tmp_path, flush_logs_every_n_steps=2)
    metrics = {"test": 1}
    logger.log_metrics(metrics, step=0)
    assert logger.experiment.metrics
    logger.log_metrics(metrics, step=1)  # flush triggered
    assert not logger.experiment.metrics


def test_append_columns(pl, tmp_path):
    """test_csv.py::test_append_columns: new columns rewrite the header; a missing one keeps it."""
    logger = pl.loggers.CSVLogger(tmp_path, flush_logs_every_n_steps=1)

    logger.log_metrics({"a": 1, "b": 2})

    logger.log_metrics({"a": 1, "b": 2, "c": 3})
    with open(logger.experiment.metrics_file_path) as file:
        header = file.readline().strip()
        assert set(header.split(",")) == {"step", "a", "b", "c"}

    logger.log_metrics({"a": 1, "c": 3})
    with open(logger.experiment.metrics_file_path) as file:
        header = file.readline().strip()
        assert set(header.split(",")) == {"step", "a", "b", "c"}
