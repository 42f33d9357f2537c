"""Specification of conv3's sliced backward pass (cnn.mx.conv, ``conv_backward_chunk``).

MLX's CUDA backward convolution runs out of memory on conv3's input gradient from batch 3584 up;
the MLX port can run that backward pass over slices of the batch. Slicing must not change the
numbers beyond float32 rounding: the forward pass is the same, the weight gradient a sum of the
slices' gradients (another summation order), and the input gradient one matrix product per slice
(OpenBLAS, loaded by ``cnn.mx``, blocks a product of another size differently; with MLX's bundled
BLAS it is bit for bit the same). On the CPU the default leaves the graph untouched.
"""

from __future__ import annotations

import inspect

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx import conv as conv_mod
from cnn.mx.conv import DEFAULT_GPU_CHUNK, SlicedBackwardConv2d, resolve_chunk
from cnn.mx.model import SeedCNN
from cnn.mx.module import AdamL2
from cnn.mx.module import Classifier as MxClassifier

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from cnn.errors import ConfigError

# Gradients computed slice by slice may differ in the last bits. Measured on this CPU (batch 10,
# slices of 4): input gradient 3.6e-7, weight gradient 4.4e-7 of the largest magnitude (OpenBLAS;
# 0 and 8.8e-7 with MLX's bundled BLAS).
GRAD_RTOL = 1e-5


def conv3_pair(chunk: int) -> tuple[nn.Conv2d, SlicedBackwardConv2d]:
    """conv3's shape (50 -> 100 channels, 5x5, padding 2): a plain and a sliced one, same weights."""
    mx.random.seed(0)
    plain = nn.Conv2d(50, 100, 5, padding=2)
    sliced = SlicedBackwardConv2d(50, 100, 5, padding=2, chunk=chunk)
    sliced.update(plain.parameters())
    return plain, sliced


def forward_and_grads(layer: nn.Module, x: mx.array, cotangent: mx.array) -> tuple:
    """Output, input gradient and parameter gradients of ``sum(layer(x) * cotangent)``."""
    def objective(params, x):
        layer.update(params)
        return (layer(x) * cotangent).sum()

    params = layer.trainable_parameters()
    out = layer(x)
    param_grads, x_grad = mx.grad(objective, argnums=(0, 1))(params, x)
    layer.update(params)
    mx.eval(out, x_grad, param_grads)
    return np.array(out), np.array(x_grad), {k: np.array(v) for k, v in tree_flatten(param_grads)}


def assert_grads_close(actual: np.ndarray, expected: np.ndarray, name: str) -> None:
    """Equal up to float32 rounding: within ``GRAD_RTOL`` of the gradient's largest magnitude."""
    np.testing.assert_allclose(actual, expected, rtol=GRAD_RTOL,
                               atol=GRAD_RTOL * np.abs(expected).max(), err_msg=name)


def test_sliced_backward_gives_the_plain_convolutions_gradients():
    # batch 10 in slices of 4: 4 + 4 + 2 (not a multiple of the slice size)
    plain, sliced = conv3_pair(chunk=4)
    x, cotangent = mx.random.normal((10, 7, 7, 50)), mx.random.normal((10, 7, 7, 100))
    out, x_grad, grads = forward_and_grads(plain, x, cotangent)
    out_s, x_grad_s, grads_s = forward_and_grads(sliced, x, cotangent)
    np.testing.assert_array_equal(out_s, out)  # forward: mx.conv2d + bias, as nn.Conv2d
    np.testing.assert_array_equal(grads_s["bias"], grads["bias"])  # not sliced
    assert_grads_close(x_grad_s, x_grad, "input")  # slices concatenated
    assert_grads_close(grads_s["weight"], grads["weight"], "weight")  # slices summed


@pytest.mark.parametrize("batch", [4, 3])
def test_a_batch_no_larger_than_the_slice_builds_the_plain_graph(batch, monkeypatch):
    plain, sliced = conv3_pair(chunk=4)
    monkeypatch.setattr(conv_mod, "sliced_conv2d", None)  # any use of the custom function fails
    x, cotangent = mx.random.normal((batch, 7, 7, 50)), mx.random.normal((batch, 7, 7, 100))
    expected, got = forward_and_grads(plain, x, cotangent), forward_and_grads(sliced, x, cotangent)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    for name in expected[2]:
        np.testing.assert_array_equal(got[2][name], expected[2][name], err_msg=name)


def training_step(chunk: int, compiled: bool, images: mx.array, labels: mx.array) -> tuple:
    """One Adam step of the MNIST-shaped Classifier, as the Trainer runs it: value_and_grad and
    the update, compiled with explicit state ``[model.state, optimizer.state, mx.random.state]``.
    Returns (loss, gradients, weights before, weights after) as numpy."""
    model = MxClassifier(seed=3, conv_backward_chunk=chunk)  # dropout on: same seed, same masks
    model.train()
    optimizer = AdamL2(1e-3, weight_decay=1e-4)
    optimizer.init(model.trainable_parameters())
    mx.random.seed(11)
    before = {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}

    def step(images, labels):
        loss_fn = lambda x, y: nn.losses.nll_loss(model(x), y, reduction="mean")  # noqa: E731
        loss, grads = nn.value_and_grad(model, loss_fn)(images, labels)
        optimizer.update(model, grads)
        return loss, grads

    if compiled:
        state = [model.state, optimizer.state, mx.random.state]
        step = mx.compile(step, inputs=state, outputs=state)
    loss, grads = step(images, labels)
    mx.eval(loss, grads, model.parameters())
    after = {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}
    return loss.item(), {k: np.array(v) for k, v in tree_flatten(grads)}, before, after


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "eager"])
def test_the_training_step_in_slices_of_3_matches_the_unsliced_one(compiled):
    rng = np.random.default_rng(0)
    images = mx.array(rng.integers(0, 256, size=(7, 28, 28, 1), dtype=np.uint8))
    labels = mx.array(rng.integers(0, 10, size=7))
    loss, grads, _, _ = training_step(0, compiled, images, labels)  # 0: slicing off
    loss_s, grads_s, before, after = training_step(3, compiled, images, labels)  # 3 + 3 + 1
    assert loss_s == loss  # the forward pass is the plain one
    assert set(grads_s) == set(grads)
    for name in grads:  # conv3's backward and, through its input gradient, conv1's and conv2's
        assert_grads_close(grads_s[name], grads[name], name)
    assert all(not np.array_equal(after[k], before[k]) for k in before)  # the update ran


def test_on_the_cpu_the_default_leaves_slicing_off(monkeypatch):
    assert mx.default_device() == mx.cpu
    assert SeedCNN().conv3.chunk is None  # None: "auto"
    assert MxClassifier().net.conv3.chunk is None
    assert resolve_chunk(None) is None  # auto, on the CPU: off
    calls = []
    monkeypatch.setattr(conv_mod, "sliced_conv2d", lambda *a: calls.append(a))
    layer = SlicedBackwardConv2d(2, 3, 5, padding=2)  # tiny channels: a batch past 2048 is cheap
    mx.eval(mx.grad(lambda x: layer(x).sum())(mx.zeros((DEFAULT_GPU_CHUNK + 1, 7, 7, 2))))
    assert calls == []


def test_the_default_slices_at_2048_on_a_gpu_and_0_turns_slicing_off(monkeypatch):
    monkeypatch.setattr(conv_mod.mx, "default_device", lambda: mx.Device(mx.gpu))
    assert resolve_chunk(None) == DEFAULT_GPU_CHUNK == 2048
    assert resolve_chunk(0) is None
    assert resolve_chunk(512) == 512


@pytest.mark.parametrize("chunk", [-1, 2.5, True])
def test_a_slice_size_that_is_not_a_whole_number_from_0_is_a_config_error(chunk):
    with pytest.raises(ConfigError, match="conv_backward_chunk"):
        MxClassifier(conv_backward_chunk=chunk)


def test_the_torch_classifier_takes_the_same_arguments_so_one_yaml_drives_both():
    from cnn.pt.module import Classifier as PtClassifier

    def arguments(cls):
        return [(p.name, p.default) for p in inspect.signature(cls.__init__).parameters.values()]

    assert arguments(PtClassifier) == arguments(MxClassifier)
    assert PtClassifier(conv_backward_chunk=1024).hparams.conv_backward_chunk == 1024  # ignored
