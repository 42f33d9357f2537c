"""The torch side through the real command line, as a user runs it."""

from __future__ import annotations

import csv

import pytest
from PIL import Image

from cnn import schema
from cnn.data import load_dataset
from cnn.pt.model import SeedCNN
from cnn.tools.events import read_scalars, run_dirs
from tests.cli_runs import run_cli, short_run

SHORT_FIT = [*short_run(config=None, epochs=2, train_batches=6, val_batches=2, test_batches=2, log_every=2,
                       eval_batch_size=200, progress_bar=True)]


@pytest.mark.parametrize("in_channels, image_size, num_classes, expected", [
    (1, 28, 10, 659_855), (3, 32, 10, 1_756_880), (3, 32, 100, 1_792_970)])
def test_seed_network_has_the_reference_parameter_count(in_channels, image_size, num_classes,
                                                        expected):
    model = SeedCNN(in_channels, image_size, num_classes)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    result = run_cli("fit", "--config", "configs/mnist.yaml",
                     "--trainer.default_root_dir", str(logs), *SHORT_FIT)
    assert result.returncode == 0, result.stderr[-3000:]
    return logs, result


def test_fit_writes_the_schema_tags_under_dataset_and_framework(fitted_run):
    logs, _ = fitted_run
    (run,) = run_dirs(logs)
    assert run.relative_to(logs).as_posix() == "mnist/torch/version_0"
    tags = set(read_scalars(run))
    assert {schema.TRAIN_LOSS, schema.TRAIN_ACC, schema.VAL_LOSS, schema.VAL_ACC,
            schema.TEST_LOSS, schema.TEST_ACC, schema.EPOCH} <= tags
    assert (run / "hparams.yaml").is_file()


def test_fit_keeps_best_and_last_checkpoints_and_tests_the_best(fitted_run):
    logs, result = fitted_run
    folder = logs / "mnist/torch/version_0/checkpoints"
    checkpoints = {p.name for p in folder.glob("*.ckpt")}
    assert "last.ckpt" in checkpoints and len(checkpoints) == 2
    assert "test/acc" in result.stdout
    (best,) = checkpoints - {"last.ckpt"}
    assert (folder / f"{best}.confusion.png").stat().st_size > 0


def test_predict_classifies_png_files_and_reports_unreadable_ones(fitted_run, tmp_path):
    logs, _ = fitted_run
    test = load_dataset("mnist").test
    files = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(test.images[i][:, :, 0]).resize((56, 56)).convert("RGB").save(path)
        files.append(str(path))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "predictions.csv"
    ckpt = logs / "mnist/torch/version_0/checkpoints/last.ckpt"
    result = run_cli("predict", "--config", "configs/mnist.yaml", "--ckpt_path", str(ckpt),
                     "--trainer.default_root_dir", str(tmp_path),
                     "--data.predict_files", "[" + ",".join(files + [str(broken)]) + "]",
                     "--output", str(out))
    assert result.returncode == 1, result.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == files + [str(broken)]
    assert all(r["class"] in "0123456789" and 0 < float(r["probability"]) <= 1
               for r in rows[:3])
    assert rows[3]["error"] and not rows[3]["class"]
