"""Converting trained weights between the torch and MLX sides, and loading checkpoints safely."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from types import SimpleNamespace

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx import checkpoint as mx_checkpoint
from cnn.mx.module import AdamL2
from cnn.mx.module import Classifier as MxClassifier

import lightning
import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest
import safetensors.numpy
import torch
from mlx.utils import tree_flatten

from cnn import weights
from cnn.data import channel_stats, get_spec, load_dataset
from cnn.errors import ConfigError
from cnn.pt.checkpoint import SafeCheckpointIO, check_checkpoint_fits
from cnn.pt.module import Classifier as PtClassifier
from cnn.tools import convert
from tests.cli_runs import ROOT, run_cli

STEPS, BATCH = 20, 64  # enough Adam steps to move well away from the initial weights
LR = 1e-3
MNIST = dict(in_channels=1, image_size=28, num_classes=10, classes=get_spec("mnist").classes)
QUICK_TEST = ["--config", "configs/mnist.yaml", "--trainer.limit_test_batches", "2",
              "--data.eval_batch_size", "250", "--trainer.enable_progress_bar", "false",
              "--trainer.logger", "false"]


@pytest.fixture(scope="module")
def mnist_data():
    data = load_dataset("mnist")
    mean, std = channel_stats(data.train.images)
    return data, np.array(mean, np.float32), np.array(std, np.float32)


@pytest.fixture(scope="module")
def torch_trained(mnist_data, tmp_path_factory):
    """A briefly trained torch Classifier and its Lightning-shaped ``.ckpt`` (saved atomically)."""
    data, mean, std = mnist_data
    torch.manual_seed(0)
    model = PtClassifier(seed=1, **MNIST)
    model.mean.copy_(torch.from_numpy(mean))
    model.std.copy_(torch.from_numpy(std))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    for i in range(STEPS):
        images = torch.from_numpy(data.train.images[i * BATCH:(i + 1) * BATCH].transpose(0, 3, 1, 2))
        labels = torch.from_numpy(data.train.labels[i * BATCH:(i + 1) * BATCH]).long()
        loss = torch.nn.functional.nll_loss(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    path = tmp_path_factory.mktemp("torch") / "trained.ckpt"
    SafeCheckpointIO().save_checkpoint({
        "epoch": 0, "global_step": STEPS, "pytorch-lightning_version": lightning.__version__,
        "state_dict": model.state_dict(), "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [], "hyper_parameters": dict(model.hparams)}, path)
    return model, path


@pytest.fixture(scope="module")
def mlx_trained(mnist_data, tmp_path_factory):
    """A briefly trained MLX Classifier and its native checkpoint (optimizer and RNG included)."""
    data, mean, std = mnist_data
    mx.random.seed(0)
    model = MxClassifier(seed=2, **MNIST)
    model.mean, model.std = mx.array(mean), mx.array(std)
    optimizer = AdamL2(LR)
    step = mnn.value_and_grad(model, lambda m, x, y: mnn.losses.nll_loss(m(x), y, reduction="mean"))
    model.train()
    for i in range(STEPS):
        images = mx.array(data.train.images[i * BATCH:(i + 1) * BATCH])
        labels = mx.array(data.train.labels[i * BATCH:(i + 1) * BATCH])
        _, grads = step(model, images, labels)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
    model.eval()
    path = tmp_path_factory.mktemp("mlx") / "trained.safetensors"
    mx_checkpoint.save_checkpoint(path, {
        "epoch": 0, "global_step": STEPS, "state_dict": dict(tree_flatten(model.parameters())),
        "optimizer_state": dict(tree_flatten(optimizer.state)), "rng_state": mx.random.state[0],
        "hyper_parameters": dict(model.hparams)})
    return model, path


def run_convert(source, to: str, out) -> None:
    assert convert.main([str(source), "--to", to, "--out", str(out)], "torch") == 0


@pytest.fixture(scope="module")
def converted(torch_trained, mlx_trained, tmp_path_factory):
    """``torch_to_mlx``: the torch-trained .ckpt for MLX; ``mlx_to_torch``: the reverse."""
    out = tmp_path_factory.mktemp("converted")
    run_convert(torch_trained[1], "mlx", out / "torch_to_mlx.safetensors")
    run_convert(mlx_trained[1], "torch", out / "mlx_to_torch.safetensors")
    return out / "torch_to_mlx.safetensors", out / "mlx_to_torch.safetensors"


def torch_classes(model: PtClassifier, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(images[i:i + 1000].transpose(0, 3, 1, 2)))
                               .argmax(1).numpy() for i in range(0, len(images), 1000)])


def mlx_classes(model: MxClassifier, images: np.ndarray) -> np.ndarray:
    return np.concatenate([np.array(model(mx.array(images[i:i + 1000])).argmax(axis=1))
                           for i in range(0, len(images), 1000)])


def test_torch_to_mlx_to_torch_round_trip_gives_bit_identical_weights(torch_trained, converted,
                                                                      tmp_path):
    back = tmp_path / "back.safetensors"
    run_convert(converted[0], "torch", back)
    loaded = SafeCheckpointIO().load_checkpoint(back)["state_dict"]
    original = torch_trained[0].state_dict()
    assert loaded.keys() == original.keys()
    for name, tensor in original.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name


def test_mlx_to_torch_to_mlx_round_trip_gives_bit_identical_weights(mlx_trained, converted,
                                                                    tmp_path):
    back = tmp_path / "back.safetensors"
    run_convert(converted[1], "mlx", back)
    loaded = mx_checkpoint.load_checkpoint(back)["state_dict"]
    original = dict(tree_flatten(mlx_trained[0].parameters()))
    assert loaded.keys() == original.keys()
    for name, array in original.items():
        assert loaded[name].dtype == array.dtype
        assert np.array_equal(np.array(loaded[name]), np.array(array)), name


def test_torch_side_reads_a_native_mlx_checkpoint_as_the_converted_file(mlx_trained, converted):
    io = SafeCheckpointIO()
    native, via_file = (io.load_checkpoint(p) for p in (mlx_trained[1], converted[1]))
    assert native["hyper_parameters"]["classes"] == list(MNIST["classes"])
    assert all(torch.equal(native["state_dict"][k], v) for k, v in via_file["state_dict"].items())


def test_an_mlx_checkpoint_file_is_laid_out_as_cnn_weights_defines_it(mlx_trained):
    from safetensors import safe_open

    with safe_open(str(mlx_trained[1]), framework="numpy") as f:
        names, metadata = list(f.keys()), f.metadata()
    model_tensors = [n for n in names if n.startswith(weights.MLX_PREFIX)]
    assert model_tensors and all(n[len(weights.MLX_PREFIX):].startswith(("net.", "mean", "std"))
                                 for n in model_tensors)
    assert json.loads(metadata[weights.META_KEY])["format_version"] == weights.MLX_FORMAT_VERSION


# The default run classifies the first 1,000 test images; the slow run all 10,000.
IMAGES = [1000, pytest.param(10000, marks=pytest.mark.slow)]


@pytest.mark.parametrize("count", IMAGES)
def test_torch_model_converted_to_mlx_predicts_the_same_class_on_the_mnist_test_images(
        mnist_data, torch_trained, converted, count):
    test = mnist_data[0].test
    images, labels = test.images[:count], test.labels[:count]
    mlx_model = MxClassifier(**MNIST)
    mlx_model.load_weights(list(mx_checkpoint.load_checkpoint(converted[0])["state_dict"].items()))
    mlx_model.eval()
    expected = torch_classes(torch_trained[0], images)
    differing = int((mlx_classes(mlx_model, images) != expected).sum())
    print(f"torch -> mlx: {differing} of {len(expected)} predictions differ")
    assert (expected == labels).mean() > 0.5  # trained, not the initial weights
    assert differing <= 3


@pytest.mark.parametrize("count", IMAGES)
def test_mlx_model_converted_to_torch_predicts_the_same_class_on_the_mnist_test_images(
        mnist_data, mlx_trained, converted, count):
    test = mnist_data[0].test
    images, labels = test.images[:count], test.labels[:count]
    torch_model = PtClassifier(**MNIST)
    torch_model.load_state_dict(SafeCheckpointIO().load_checkpoint(converted[1])["state_dict"])
    torch_model.eval()
    expected = mlx_classes(mlx_trained[0], images)
    differing = int((torch_classes(torch_model, images) != expected).sum())
    print(f"mlx -> torch: {differing} of {len(expected)} predictions differ")
    assert (expected == labels).mean() > 0.5
    assert differing <= 3


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_cli_test_runs_on_a_converted_checkpoint(framework, converted, tmp_path):
    # Each side gets the other side's weights: torch tests the MLX-trained model and vice versa.
    ckpt = converted[1] if framework == "torch" else converted[0]
    result = run_cli("--framework", framework, "test", "--ckpt_path", str(ckpt), *QUICK_TEST,
                     "--trainer.default_root_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(re.search(r"test/acc\s*[│|]?\s*([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.5


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_cifar10_checkpoint_with_the_mnist_config_is_one_line_naming_both(tmp_path):
    cifar = PtClassifier(in_channels=3, image_size=32, num_classes=10,
                         classes=get_spec("cifar10").classes)
    ckpt = tmp_path / "cifar10.ckpt"
    torch.save({"state_dict": cifar.state_dict(), "hyper_parameters": dict(cifar.hparams),
                "pytorch-lightning_version": lightning.__version__}, ckpt)
    result = run_cli("test", "--ckpt_path", str(ckpt), *QUICK_TEST,
                     "--trainer.default_root_dir", str(tmp_path))
    assert result.returncode != 0
    assert error_lines(result.stderr) == [
        f"error: checkpoint {ckpt} was trained for cifar10-shaped input (3x32x32, 10 classes); "
        "this config is mnist (1x28x28, 10 classes)"]


class RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_malicious(path, marker, how: str) -> None:
    if how == "torch.save":
        torch.save({"state_dict": {}, "payload": RunsCode(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}, protocol=2))


@pytest.mark.parametrize("how", ["torch.save", "raw pickle"])
def test_a_ckpt_that_runs_code_when_unpickled_is_refused_and_never_run(how, tmp_path, capsys):
    ckpt, marker = tmp_path / "evil.ckpt", tmp_path / "pwned"
    write_malicious(ckpt, marker, how)
    with pytest.raises(ConfigError, match=r"refusing checkpoint .*evil\.ckpt.*GLOBAL"):
        SafeCheckpointIO().load_checkpoint(ckpt, weights_only=False)  # asked for, not granted
    assert convert.main([str(ckpt), "--to", "mlx", "--out", str(tmp_path / "x.safetensors")]) == 1
    assert capsys.readouterr().err.startswith(f"error: refusing checkpoint {ckpt}")
    assert not marker.exists()


@pytest.mark.slow  # ~10 s of imports; the in-process test above covers the same loader
def test_the_torch_cli_refuses_a_ckpt_that_runs_code_when_unpickled(tmp_path):
    ckpt, marker = tmp_path / "evil.ckpt", tmp_path / "pwned"
    write_malicious(ckpt, marker, "torch.save")
    result = run_cli("test", "--ckpt_path", str(ckpt), *QUICK_TEST,
                     "--trainer.default_root_dir", str(tmp_path))
    assert result.returncode != 0
    assert len(error_lines(result.stderr)) == 1 and not marker.exists()


def attached(model: PtClassifier, fn: str, ckpt_path) -> PtClassifier:
    """``model`` as Lightning hands it to ``on_load_checkpoint`` during ``fn``."""
    model._trainer = SimpleNamespace(state=SimpleNamespace(fn=fn), ckpt_path=str(ckpt_path),
                                     datamodule=None)
    return model


def test_a_weights_only_file_serves_test_but_resuming_fit_from_it_is_one_line(converted):
    checkpoint = SafeCheckpointIO().load_checkpoint(converted[1])
    check_checkpoint_fits(checkpoint, attached(PtClassifier(**MNIST), "test", converted[1]))
    with pytest.raises(ConfigError, match=r"holds weights only .* fit cannot resume"):
        check_checkpoint_fits(checkpoint, attached(PtClassifier(**MNIST), "fit", converted[1]))


def test_a_fashion_mnist_checkpoint_is_refused_for_mnist_though_every_shape_fits(converted):
    checkpoint = SafeCheckpointIO().load_checkpoint(converted[1])
    checkpoint["hyper_parameters"]["classes"] = list(get_spec("fashion_mnist").classes)
    with pytest.raises(ConfigError, match=r"trained for fashion_mnist-shaped input .* "
                                          r"this config is mnist \(1x28x28, 10 classes\)"):
        check_checkpoint_fits(checkpoint, attached(PtClassifier(**MNIST), "test", converted[1]))


@pytest.mark.parametrize("damage", ["random bytes", "truncated ckpt", "truncated safetensors",
                                    "foreign safetensors"])
def test_a_corrupt_checkpoint_is_one_clear_line(damage, torch_trained, converted, tmp_path,
                                                capsys):
    bad = tmp_path / "bad.ckpt"
    if damage == "random bytes":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "foreign safetensors":  # a valid file, but not one of ours
        bad.write_bytes(safetensors.numpy.save({"weight": np.zeros(3, np.float32)}))
    else:
        whole = (torch_trained[1] if damage == "truncated ckpt" else converted[1]).read_bytes()
        bad.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ConfigError) as error:
        SafeCheckpointIO().load_checkpoint(bad)
    assert str(bad) in str(error.value) and "\n" not in str(error.value)
    assert convert.main([str(bad), "--to", "torch", "--out", str(tmp_path / "x.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(bad) in err


def test_a_failed_save_leaves_the_previous_checkpoint_loadable(torch_trained, tmp_path,
                                                               monkeypatch):
    path = tmp_path / "last.ckpt"
    io = SafeCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)

    def killed(fd):
        raise KeyboardInterrupt  # as if the process died before the data reached the disk

    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["last.ckpt"]  # no temp file left behind


@pytest.mark.parametrize("args, status, message", [
    (["missing.ckpt", "--to", "mlx", "--out", "x.safetensors"], 1, "checkpoint missing.ckpt not found"),
    (["missing.ckpt", "--to", "jax", "--out", "x.safetensors"], 2, "invalid choice: 'jax'"),
    (["missing.ckpt", "--to", "torch", "--out", "x.pt"], 2, "--out must end in .safetensors")])
def test_convert_command_errors_are_one_line_and_an_exit_status(args, status, message, tmp_path):
    result = run_cli("convert", *args, cwd=tmp_path)
    assert result.returncode == status
    (line,) = error_lines(result.stderr)
    assert message in line and result.stderr.count("\n") == 1


def test_converting_an_mlx_checkpoint_to_torch_needs_no_torch(mlx_trained, tmp_path):
    script = ("import sys; from cnn.tools.convert import main; "
              f"status = main([{str(mlx_trained[1])!r}, '--to', 'torch', '--out', "
              f"{str(tmp_path / 'w.safetensors')!r}]); "
              "assert 'torch' not in sys.modules; sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_safetensors_file_whose_header_length_starts_like_a_pickle_is_still_safetensors(tmp_path):
    from cnn.weights import sniff

    path = tmp_path / "weights.safetensors"
    header = b'{"__metadata__":{"pad":"' + b"x" * (0x80 - 27) + b'"}}'
    assert len(header) == 0x80
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    assert sniff(str(path)) == "safetensors"


@pytest.mark.parametrize("head, kind", [
    ((0x80).to_bytes(8, "little") + b"{", "safetensors"),  # header length 0x80: pickle's first byte
    (b"PK\x03\x04" + b"\x00" * 5, "torch"),  # torch.save's zip
    (b"\x80\x02}q\x00(X\x05\x00", "torch"),  # a legacy pickle
    (b"not a ckpt", None),
    (b"PK", None),  # cut short: neither
])
def test_checkpoint_kind_is_told_by_the_first_bytes_alone(head, kind):
    from cnn.weights import HEAD_BYTES, checkpoint_kind

    assert checkpoint_kind(head[:HEAD_BYTES]) == kind
