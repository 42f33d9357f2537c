"""``model.init_from``: a new run starts from a trained model's network weights, whichever
framework trained them, with a fresh optimizer; another class count re-initialises the last
layer (a ``note:`` line); another input shape is one ``error:`` line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnn.weights import read_weights
from tests.cli_runs import ROOT, run_cli, short_run

CONFIG = str(ROOT / "configs" / "mnist.yaml")
TINY = (*short_run(config=None), "--trainer.enable_model_summary", "false")
LAST = {"torch": "last.ckpt", "mlx": "last.safetensors"}
# so small that two steps leave every weight as it started, to float32 rounding
STILL_LR = ("--model.lr", "1e-12", "--model.lr_schedule", "constant")


def fit(framework, root, *args):
    result = run_cli("--framework", framework, "fit", "--config", CONFIG, *TINY,
                     "--trainer.default_root_dir", str(root), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    (last,) = (root / "mnist" / framework).glob(f"version_*/checkpoints/{LAST[framework]}")
    return last, result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The last checkpoint of one tiny MNIST fit on each framework."""
    root = tmp_path_factory.mktemp("trained")
    return {framework: fit(framework, root)[0] for framework in ("torch", "mlx")}


@pytest.mark.parametrize(("source", "framework"), [("torch", "mlx"), ("mlx", "torch")])
def test_a_new_run_starts_from_the_other_frameworks_trained_weights(tmp_path, trained, source, framework):
    last, result = fit(framework, tmp_path, "--model.init_from", str(trained[source]), *STILL_LR)
    started, now = read_weights(str(trained[source])), read_weights(str(last))
    assert set(now.params) == set(started.params)
    for name, value in started.params.items():
        np.testing.assert_allclose(now.params[name], value, atol=1e-6, err_msg=name)
    assert now.global_step == 2  # a new run: its own two steps, not the source's added to them
    assert "note:" not in result.stderr


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_fresh_run_differs_from_a_run_started_from_trained_weights(tmp_path, trained, framework):
    last, _ = fit(framework, tmp_path, *STILL_LR)  # the control: init_from is what made the difference
    fresh, started = read_weights(str(last)), read_weights(str(trained["torch"]))
    assert any(not np.allclose(fresh.params[k], started.params[k], atol=1e-6) for k in started.params)


def write_folder(root, classes: int, size: int = 28) -> None:
    """A folder dataset of ``classes`` grey ``size`` x ``size`` classes, 12 images each."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / f"class{c}" / f"{i}.png")


FOLDER = ("--data.dataset", "folder", "--data.channels", "1", "--data.augment", "false",
          "--data.val_fraction", "0.25", "--data.test_fraction", "0.25",
          "--data.batch_size", "8", "--data.eval_batch_size", "10")


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_another_class_count_starts_the_last_layer_afresh_with_a_note(tmp_path, trained, framework):
    write_folder(tmp_path / "images", classes=3)
    source = trained["mlx" if framework == "torch" else "torch"]
    result = run_cli("--framework", framework, "fit", "--config", CONFIG, *TINY, *FOLDER, *STILL_LR,
                     "--data.data_dir", str(tmp_path / "images"), "--data.image_size", "28",
                     "--trainer.default_root_dir", str(tmp_path / "logs"), "--model.init_from", str(source))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (f"note: model.init_from {source} was trained for 10 classes, this model has 3: its last "
            "layer (fc3.bias, fc3.weight) starts afresh") in result.stderr.splitlines()
    (last,) = (tmp_path / "logs").glob(f"folder/{framework}/version_*/checkpoints/{LAST[framework]}")
    now, started = read_weights(str(last)), read_weights(str(source))
    np.testing.assert_allclose(now.params["conv1.weight"], started.params["conv1.weight"], atol=1e-6)
    assert now.params["fc3.weight"].shape[0] == 3


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_another_input_shape_is_one_error_line(tmp_path, trained, framework):
    write_folder(tmp_path / "images", classes=10, size=32)
    source = trained["torch"]
    result = run_cli("--framework", framework, "fit", "--config", CONFIG, *TINY, *FOLDER,
                     "--data.data_dir", str(tmp_path / "images"), "--data.image_size", "32",
                     "--trainer.default_root_dir", str(tmp_path / "logs"), "--model.init_from", str(source))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: model.init_from {source} was trained for input (1x28x28, 10 classes), which does not fit "
        "this model's (fc1.bias is (450,) there, (800,) here): start from a checkpoint trained on images "
        "of this shape")
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").rglob("*.ckpt"))
