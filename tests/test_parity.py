"""Fidelity between the ports: same start, same batches, same gradients, same numbers."""

from __future__ import annotations

import cnn.mx  # noqa: F401  (loads the optimised BLAS before mlx)
from cnn.mx.datamodule import DataModule as MxDataModule
from cnn.mx.module import Classifier as MxClassifier
from cnn.mx.resnet import ResNet as MxResNet

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest
import torch
from mlx.utils import tree_flatten

from cnn import schema
from cnn.data.datasets import get_spec, load_dataset
from cnn.pt.datamodule import DataModule as PtDataModule
from cnn.pt.module import Classifier as PtClassifier
from cnn.pt.resnet import ResNet as PtResNet


def spec_kwargs(dataset: str) -> dict:
    spec = get_spec(dataset)
    return dict(in_channels=spec.channels, image_size=spec.image_size,
                num_classes=spec.num_classes)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "cifar100"])
def test_one_seed_gives_the_same_initial_weights_in_both_frameworks(dataset):
    pt = PtClassifier(**spec_kwargs(dataset), seed=7)
    mx_model = MxClassifier(**spec_kwargs(dataset), seed=7)
    pt_weights, mx_weights = pt.net.numpy_weights(), mx_model.net.numpy_weights()
    assert set(pt_weights) == set(schema.Architecture(**spec_kwargs(dataset)).shapes())
    for name, weight in pt_weights.items():
        np.testing.assert_array_equal(weight, mx_weights[name], err_msg=name)


def test_a_different_seed_gives_different_weights():
    a = PtClassifier(seed=1).net.numpy_weights()["conv1.weight"]
    b = PtClassifier(seed=2).net.numpy_weights()["conv1.weight"]
    assert not np.array_equal(a, b)


def test_both_datamodules_yield_the_same_batches_in_the_same_order_every_epoch():
    pt_data, mx_data = PtDataModule(batch_size=256, seed=3), MxDataModule(batch_size=256, seed=3)
    pt_data.setup("fit")
    mx_data.setup("fit")
    pt_loader, mx_loader = pt_data.train_dataloader(), mx_data.train_dataloader()
    epochs = []
    for epoch in (0, 1):
        pt_loader.set_epoch(epoch)
        mx_loader.set_epoch(epoch)
        pairs = list(zip(pt_loader, mx_loader))[:5]
        for (pt_x, pt_y), (mx_x, mx_y) in pairs:
            np.testing.assert_array_equal(pt_y.numpy(), np.array(mx_y))
            np.testing.assert_array_equal(pt_x.numpy().transpose(0, 2, 3, 1), np.array(mx_x))
        epochs.append(np.concatenate([pt_y.numpy() for (_, pt_y), _ in pairs]))
    assert not np.array_equal(epochs[0], epochs[1]), "each epoch must reshuffle"


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_every_gradient_agrees_after_the_layout_change(dataset):
    kwargs = spec_kwargs(dataset)
    rng = np.random.default_rng(0)
    size, channels = kwargs["image_size"], kwargs["in_channels"]
    images = rng.integers(0, 256, size=(32, size, size, channels), dtype=np.uint8)
    labels = rng.integers(0, kwargs["num_classes"], size=32).astype(np.int64)

    pt = PtClassifier(**kwargs, dropout=0.0, seed=5)
    pt.mean.fill_(0.2), pt.std.fill_(0.3)
    loss = torch.nn.functional.nll_loss(pt(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())),
                                        torch.from_numpy(labels))
    loss.backward()
    pt_grads = {name.removeprefix("net."): p.grad.numpy() for name, p in pt.named_parameters()}

    mx_model = MxClassifier(**kwargs, dropout=0.0, seed=5)
    mx_model.mean, mx_model.std = mx.full((channels,), 0.2), mx.full((channels,), 0.3)

    def mx_loss(model):
        return mnn.losses.nll_loss(model(mx.array(images)), mx.array(labels), reduction="mean")

    mx_value, grads = mnn.value_and_grad(mx_model, mx_loss)(mx_model)
    flat = {k.removeprefix("net."): np.array(v) for k, v in tree_flatten(grads)}
    mx_grads = schema.from_mlx_layout(flat, schema.Architecture(**kwargs))

    assert abs(loss.item() - mx_value.item()) <= 1e-5 * abs(loss.item())
    assert set(mx_grads) == set(pt_grads)
    for name, grad in pt_grads.items():
        assert relative_error(grad, mx_grads[name]) <= 1e-4, name


def test_on_real_digits_the_frameworks_differ_no_more_than_float32_does_from_float64():
    """MNIST's flat background makes conv1/conv2 weight gradients sums of many cancelling
    terms: torch's own float32 gradient is ~7e-4 (relative) from its float64 one there, so
    1e-4 between frameworks is not a meaningful bar on this batch. What is: MLX's float32
    gradient is no farther from torch's than torch's float32 is from the exact value."""
    test = load_dataset("mnist").test
    images, labels = test.images[:128], test.labels[:128]

    def torch_gradients(dtype):
        model = PtClassifier(dropout=0.0, seed=42).to(dtype)
        model.mean.fill_(0.1307), model.std.fill_(0.3081)
        loss = torch.nn.functional.nll_loss(
            model(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())),
            torch.from_numpy(labels))
        loss.backward()
        return {n.removeprefix("net."): p.grad.double().numpy()
                for n, p in model.named_parameters()}

    exact, pt_grads = torch_gradients(torch.float64), torch_gradients(torch.float32)
    mx_model = MxClassifier(dropout=0.0, seed=42)
    mx_model.mean, mx_model.std = mx.array([0.1307]), mx.array([0.3081])
    _, grads = mnn.value_and_grad(mx_model, lambda m: mnn.losses.nll_loss(
        m(mx.array(images)), mx.array(labels), reduction="mean"))(mx_model)
    flat = {k.removeprefix("net."): np.array(v) for k, v in tree_flatten(grads)}
    mx_grads = schema.from_mlx_layout(flat, schema.Architecture(1, 28, 10))
    for name, grad in pt_grads.items():
        float32_noise = relative_error(exact[name], grad)
        assert relative_error(grad, mx_grads[name]) <= 2 * float32_noise + 1e-5, name


@pytest.mark.parametrize("shape", [(3, 28, 28, 20), (3, 14, 14, 50), (3, 7, 7, 100)])
def test_the_mlx_pooling_gives_nn_maxpool2d_values_and_gradients(shape):
    # ReLU first, as in the network: its zeros are ties, where max pooling must still agree
    from cnn.mx.model import max_pool_2x2

    x = mx.array(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    weights = mx.array(np.random.default_rng(1).normal(
        size=(shape[0], shape[1] // 2, shape[2] // 2, shape[3])).astype(np.float32))
    reference = mnn.MaxPool2d(2, stride=2)

    def objective(pool):
        return lambda x: (pool(mnn.relu(x)) * weights).sum()

    assert mx.array_equal(max_pool_2x2(mnn.relu(x)), reference(mnn.relu(x))).item()
    assert mx.array_equal(mx.grad(objective(max_pool_2x2))(x),
                          mx.grad(objective(reference))(x)).item()


def _mlx_summary(module) -> str:
    """What the MLX ModelSummary prints for ``module``."""
    import contextlib
    import io

    from cnn.mx.lightning.callbacks import ModelSummary

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ModelSummary().on_fit_start(None, module)
    return out.getvalue()


def _mlx_summary_counts(module) -> tuple[int, int]:
    """(trainable, total) as the MLX ModelSummary prints them."""
    lines = {line.split(" ", 1)[1]: int(line.split(" ", 1)[0].replace(",", ""))
             for line in _mlx_summary(module).splitlines() if line.endswith("params")}
    return lines["Trainable params"], lines["Total params"]


def _mlx_summary_row(module, name: str) -> int:
    """The Params column of the MLX ModelSummary's row ``name``."""
    cells = [[c.strip() for c in line.split("|")] for line in _mlx_summary(module).splitlines() if "|" in line]
    return next(int(row[3].replace(",", "")) for row in cells if row[1] == name)


@pytest.mark.parametrize("freeze_first_conv", [False, True])
def test_both_model_summaries_count_the_same_parameters(freeze_first_conv):
    from lightning.pytorch.utilities.model_summary import ModelSummary as LightningSummary

    pt_module, mx_module = PtClassifier(), MxClassifier()
    if freeze_first_conv:  # a frozen layer is a non-trainable parameter on both sides
        pt_module.net.conv1.requires_grad_(False)
        mx_module.net.conv1.freeze()
    lightning = LightningSummary(pt_module)
    # the normalisation statistics are buffers (torch) / registered buffers (MLX), not parameters
    assert lightning.total_parameters == 659_855
    assert _mlx_summary_counts(mx_module) == (lightning.trainable_parameters, lightning.total_parameters)
    assert lightning.trainable_parameters == 659_855 - (520 if freeze_first_conv else 0)


@pytest.mark.parametrize("freeze_stem", [False, True])
def test_both_model_summaries_count_the_same_parameters_of_the_resnet(freeze_stem):
    from lightning.pytorch.utilities.model_summary import ModelSummary as LightningSummary

    kwargs = spec_kwargs("cifar10")
    pt_module = PtClassifier(**kwargs, net=PtResNet(3, 10, seed=1))
    mx_module = MxClassifier(**kwargs, net=MxResNet(3, 10, seed=1))
    if freeze_stem:  # a frozen batch norm: its weight and bias are non-trainable, its statistics still buffers
        pt_module.net.stem.requires_grad_(False)
        mx_module.net.stem.freeze()
    lightning = LightningSummary(pt_module)
    # the batch norms' running statistics (and torch's num_batches_tracked) are buffers, not parameters
    assert lightning.total_parameters == schema.ResNetArchitecture(3, 10).num_parameters()
    assert _mlx_summary_counts(mx_module) == (lightning.trainable_parameters, lightning.total_parameters)
    assert _mlx_summary_row(mx_module, "net") == lightning.param_nums[lightning.layer_names.index("net")]
    frozen = sum(p.numel() for p in pt_module.net.stem.parameters()) if freeze_stem else 0
    assert lightning.trainable_parameters == lightning.total_parameters - frozen


def test_unfreezing_the_mlx_module_leaves_its_buffers_untrained():
    module = MxClassifier()
    module.unfreeze()
    trained = {name for name, _ in tree_flatten(module.trainable_parameters())}
    assert {"mean", "std"}.isdisjoint(trained) and "net.conv1.weight" in trained
