"""The seed network in mlx.nn (channels-last)."""

from __future__ import annotations

from cnn.mx.conv import SlicedBackwardConv2d

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from cnn.schema import (
    CONV_CHANNELS,
    DEFAULT_DROPOUT,
    KERNEL,
    Architecture,
    from_mlx_layout,
    init_weights,
    to_mlx_layout,
)


def max_pool_2x2(x: mx.array) -> mx.array:
    """2x2 max pooling, stride 2, channels-last; an odd last row or column is dropped
    (``nn.MaxPool2d(2, 2)`` and torch's ``max_pool2d(x, 2)`` do the same).

    Written as a reshape and a max over two axes rather than ``nn.MaxPool2d``, whose
    strided-window view makes the backward pass a slow strided scatter on the CPU: same values
    and gradients (``tests/test_parity.py`` holds the equality), a faster backward pass (the
    timings: docs/performance.md, "Layer by layer").
    """
    n, h, w, c = x.shape
    h, w = h // 2, w // 2
    if x.shape[1] != 2 * h or x.shape[2] != 2 * w:
        x = x[:, : 2 * h, : 2 * w, :]
    return x.reshape(n, h, 2, w, 2, c).max(axis=(2, 4))


class SeedCNN(nn.Module):
    """Three 5x5 conv/ReLU/max-pool stages, then three linear layers with dropout.

    Input: float32 ``(N, H, W, C)``; output: log-probabilities ``(N, num_classes)``.
    Parameter names are those of ``cnn.schema.Architecture.shapes()``, in the MLX layout
    (``cnn.schema.to_mlx_layout``); the weights are drawn by ``cnn.schema.init_weights``, so
    the torch twin with the same seed starts from the same numbers.

    ``conv_backward_chunk`` works around MLX's CUDA backward convolution, which runs out of
    memory on the third convolution's input gradient (7x7 or 8x8 input) on large batches:
    that convolution's backward pass runs over slices of at most this many images
    (``cnn.mx.conv``). ``None`` ("auto"): 2048 when MLX's default device is a GPU, off on the
    CPU, whose backward has no such limit and keeps its graph untouched; ``0``: off; a positive
    number: that slice size. Only conv3 is sliced: only its input gradient fails (probed one
    convolution at a time; docs/performance.md), and every slice costs extra kernel launches.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10,
                 dropout: float = DEFAULT_DROPOUT, seed: int = 0,
                 conv_backward_chunk: int | None = None):
        super().__init__()
        self.arch = Architecture(in_channels, image_size, num_classes)
        c1, c2, c3 = CONV_CHANNELS
        fc = self.arch.fc
        self.conv1 = nn.Conv2d(in_channels, c1, KERNEL, padding=KERNEL // 2)
        self.conv2 = nn.Conv2d(c1, c2, KERNEL, padding=KERNEL // 2)
        self.conv3 = SlicedBackwardConv2d(c2, c3, KERNEL, padding=KERNEL // 2,
                                          chunk=conv_backward_chunk)
        self.fc1 = nn.Linear(fc, fc // 2)
        self.fc2 = nn.Linear(fc // 2, fc // 4)
        self.fc3 = nn.Linear(fc // 4, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.load_numpy(init_weights(self.arch, seed))

    def __call__(self, x: mx.array) -> mx.array:
        x = max_pool_2x2(nn.relu(self.conv1(x)))
        x = max_pool_2x2(nn.relu(self.conv2(x)))
        x = max_pool_2x2(nn.relu(self.conv3(x)))
        x = x.reshape(x.shape[0], self.arch.fc)  # explicit: an empty batch has no -1
        x = nn.relu(self.dropout(self.fc1(x)))
        x = self.dropout(self.fc2(x))
        x = self.dropout(self.fc3(x))
        if x.dtype in (mx.float16, mx.bfloat16):  # as torch's autocast: the log-softmax in float32
            x = x.astype(mx.float32)
        return x - mx.logsumexp(x, axis=1, keepdims=True)

    def load_numpy(self, weights: dict[str, np.ndarray]) -> None:
        """Copy canonical-layout (torch) numpy weights in; names and shapes must match."""
        mlx_weights = to_mlx_layout(weights, self.arch)
        self.update(tree_unflatten([(k, mx.array(v)) for k, v in mlx_weights.items()]))

    def numpy_weights(self) -> dict[str, np.ndarray]:
        """The weights as canonical-layout (torch) numpy arrays."""
        flat = {k: np.array(v) for k, v in tree_flatten(self.parameters())}
        return from_mlx_layout(flat, self.arch)
