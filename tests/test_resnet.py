"""The second network, a small ResNet with batch norm, on both frameworks: one numpy draw of its
initial weights, the same outputs from the same weights (eval mode: running statistics; train
mode: the batch's, and the running ones updated alike), a weight layout that converts both ways,
and a short fit of configs/cifar10_resnet.yaml through the real CLI on CIFAR-shaped files."""

from __future__ import annotations

import numpy as np
import pytest

from cnn import schema
from cnn.weights import read_weights
from tests.cli_runs import fit_both, run_cli

mx = pytest.importorskip("mlx.core")
torch = pytest.importorskip("torch")

from cnn.mx.resnet import ResNet as MlxResNet  # noqa: E402 - after the skip

from cnn.pt.resnet import ResNet as TorchResNet  # noqa: E402

RESNET_CONFIG = "configs/cifar10_resnet.yaml"


def images(n=6, channels=3, size=32, seed=0) -> np.ndarray:
    """Normalised-looking float32 images, NCHW."""
    return np.random.default_rng(seed).normal(size=(n, channels, size, size)).astype(np.float32)


def torch_out(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def mlx_out(net, x: np.ndarray) -> np.ndarray:
    return np.array(net(mx.array(x.transpose(0, 2, 3, 1))))


def test_one_seed_draws_the_same_initial_resnet_in_both_frameworks():
    pt, mlx = TorchResNet(3, 10, seed=7), MlxResNet(3, 10, seed=7)
    pt_weights, mlx_weights = pt.numpy_weights(), mlx.numpy_weights()
    assert set(pt_weights) == set(mlx_weights) == set(schema.ResNetArchitecture(3, 10).shapes())
    for name, value in pt_weights.items():
        np.testing.assert_array_equal(mlx_weights[name], value, err_msg=name)
    assert not np.array_equal(TorchResNet(3, 10, seed=8).numpy_weights()["stem.conv.weight"],
                              pt_weights["stem.conv.weight"])
    trained = sum(p.numel() for p in pt.parameters())
    assert trained == schema.ResNetArchitecture(3, 10).num_parameters()


def test_batch_norm_running_statistics_are_buffers_not_trained_parameters():
    pt, mlx = TorchResNet(3, 10), MlxResNet(3, 10)
    pt_buffers = {n for n, _ in pt.named_buffers()}
    assert "stem.bn.running_mean" in pt_buffers and "blocks.1.shortcut.bn.running_var" in pt_buffers
    from mlx.utils import tree_flatten

    trainable = {n for n, _ in tree_flatten(mlx.trainable_parameters())}
    everything = {n for n, _ in tree_flatten(mlx.parameters())}
    assert "stem.bn.running_mean" in everything - trainable
    assert {n for n in everything if "running" not in n} == trainable


def test_a_train_mode_pass_updates_the_running_statistics_alike_in_both_frameworks():
    pt, mlx = TorchResNet(3, 10, seed=1), MlxResNet(3, 10, seed=1)
    pt.train()
    mlx.train()
    x = images(8, seed=2) * 3 + 1  # far from the initial mean 0 / variance 1
    np.testing.assert_allclose(mlx_out(mlx, x), torch_out(pt, x), atol=1e-5)
    pt_weights, mlx_weights = pt.numpy_weights(), mlx.numpy_weights()
    running = [n for n in pt_weights if "running" in n]
    assert not np.allclose(pt_weights["stem.bn.running_mean"], 0)
    for name in running:
        np.testing.assert_allclose(mlx_weights[name], pt_weights[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_same_weights_give_the_same_predictions_in_eval_mode_and_eval_is_not_train():
    pt = TorchResNet(3, 10, seed=3)
    pt.train()
    for seed in range(3):  # running statistics away from their initial values
        torch_out(pt, images(8, seed=seed) * 2 + 0.5)
    mlx = MlxResNet(3, 10, seed=99)
    mlx.load_numpy(pt.numpy_weights())
    pt.eval()
    mlx.eval()
    x = images(5, seed=10)
    eval_pt, eval_mlx = torch_out(pt, x), mlx_out(mlx, x)
    np.testing.assert_allclose(eval_mlx, eval_pt, atol=1e-5)
    assert (eval_mlx.argmax(1) == eval_pt.argmax(1)).all()
    mlx.train()
    assert not np.allclose(mlx_out(mlx, x), eval_mlx, atol=1e-3)  # batch statistics, not running


def test_the_mlx_layout_keeps_kernels_ohwi_and_leaves_out_torchs_batch_counter():
    arch = schema.ResNetArchitecture(3, 10, width=8)
    weights = schema.init_weights(arch, seed=0)
    weights["stem.bn.num_batches_tracked"] = np.array(5, np.int64)
    mlx_layout = schema.to_mlx_layout(weights, arch)
    assert not any(n.endswith("num_batches_tracked") for n in mlx_layout)
    assert mlx_layout["stem.conv.weight"].shape == (8, 3, 3, 3)
    assert mlx_layout["blocks.1.conv1.weight"].shape == (16, 3, 3, 8)
    np.testing.assert_array_equal(mlx_layout["blocks.1.conv1.weight"],
                                  weights["blocks.1.conv1.weight"].transpose(0, 2, 3, 1))
    back = schema.from_mlx_layout(mlx_layout, arch)
    assert back["stem.bn.num_batches_tracked"].shape == () and back["stem.bn.num_batches_tracked"] == 0
    for name, value in weights.items():
        if not name.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(back[name], value, err_msg=name)
    schema.check_weights(mlx_layout, arch, "mlx")
    schema.check_weights(back, arch, "torch")


def test_seed_cnn_weights_offered_to_the_resnet_are_refused_by_name():
    seed = schema.init_weights(schema.Architecture(3, 32, 10), seed=0)
    with pytest.raises(ValueError, match="weights of the seed CNN do not fit the ResNet: set model.net"):
        schema.check_weights(seed, schema.ResNetArchitecture(3, 10), "torch")


@pytest.fixture(scope="module")
def resnet_fits(tmp_path_factory):
    """CIFAR-shaped files in the official layout, and a short fit of the ResNet config on each
    framework: ``(logs, cifar_dir, {framework: run_dir})``."""
    from cnn.data import write_cifar10

    folder = tmp_path_factory.mktemp("resnet")
    rng = np.random.default_rng(0)
    cifar = write_cifar10(folder, rng.integers(0, 256, (300, 32, 32, 3), dtype=np.uint8), np.arange(300) % 10,
                          rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8), np.arange(60) % 10)
    data = ("--data.data_dir", str(cifar), "--data.download", "false")
    runs = fit_both(folder / "logs", *data, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3",
                    "--trainer.log_every_n_steps", "2", "--data.batch_size", "32", "--data.eval_batch_size", "30",
                    config=RESNET_CONFIG)
    return folder, data, runs


def test_the_resnet_config_fits_on_both_frameworks_and_logs_the_same_tags(resnet_fits):
    from cnn.tools.events import read_scalars

    _, _, runs = resnet_fits
    tags = {framework: set(read_scalars(run)) for framework, run in runs.items()}
    assert tags["torch"] == tags["mlx"]
    assert {schema.TRAIN_LOSS, schema.TRAIN_ACC, schema.VAL_ACC, schema.TEST_ACC} <= tags["mlx"]
    for framework, run in runs.items():
        (last,) = (run / "checkpoints").glob("last.*")
        weights = read_weights(str(last))
        assert weights.arch == schema.ResNetArchitecture(3, 10, 16), framework
        # trained in train mode: the running statistics moved from their initial values
        assert not np.allclose(weights.params["blocks.2.bn2.running_var"], 1.0), framework


def mlx_predictions(path, x_uint8: np.ndarray) -> np.ndarray:
    """Class probabilities of the MLX Classifier holding the ResNet, loaded from ``path``."""
    from cnn.mx.checkpoint import load_checkpoint
    from cnn.mx.module import Classifier

    model = Classifier(in_channels=3, image_size=32, net=MlxResNet(3, 10))
    model.load_weights(list(load_checkpoint(str(path))["state_dict"].items()), strict=True)
    model.eval()
    return np.array(mx.exp(model(mx.array(x_uint8.transpose(0, 2, 3, 1)))))


def torch_predictions(path, x_uint8: np.ndarray) -> np.ndarray:
    """Class probabilities of the torch Classifier holding the ResNet, loaded from ``path``."""
    from cnn.pt.checkpoint import SafeCheckpointIO
    from cnn.pt.module import Classifier

    model = Classifier(in_channels=3, image_size=32, net=TorchResNet(3, 10))
    model.load_state_dict(SafeCheckpointIO().load_checkpoint(str(path))["state_dict"])
    model.eval()
    with torch.no_grad():
        return torch.exp(model(torch.from_numpy(x_uint8))).numpy()


@pytest.mark.parametrize("trained_with", ["torch", "mlx"])
def test_a_trained_resnet_converts_both_ways_with_the_same_predictions(resnet_fits, trained_with):
    folder, _, runs = resnet_fits
    (native,) = (runs[trained_with] / "checkpoints").glob("last.*")
    to = "mlx" if trained_with == "torch" else "torch"
    converted, back = folder / f"{trained_with}_to_{to}.safetensors", folder / f"{trained_with}_back.safetensors"
    for source, target, out in ((native, to, converted), (converted, trained_with, back)):
        result = run_cli("convert", str(source), "--to", target, "--out", str(out), "--force")
        assert result.returncode == 0, result.stderr
    x = np.random.default_rng(5).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)
    predict = {"torch": torch_predictions, "mlx": mlx_predictions}
    reference = predict[trained_with](native, x)
    for framework, path in ((to, converted), (trained_with, back)):
        probabilities = predict[framework](path, x)
        np.testing.assert_allclose(probabilities, reference, atol=1e-5, err_msg=f"{framework} {path.name}")
        assert (probabilities.argmax(1) == reference.argmax(1)).all()


def test_a_seed_cnn_config_given_a_resnet_checkpoint_says_which_network_in_one_line(resnet_fits):
    _, data, runs = resnet_fits
    (native,) = (runs["torch"] / "checkpoints").glob("last.*")
    result = run_cli("test", "--config", "configs/cifar10.yaml", *data, "--ckpt_path", str(native),
                     "--trainer.logger", "false")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: checkpoint {native}: weights of the ResNet do not fit the seed CNN: set model.net as in "
        f"the run that trained them (its config.yaml)")
