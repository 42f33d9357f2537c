"""The project's ResNet in mlx.nn (channels-last), with batch normalisation."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from cnn.schema import (
    BN_EPS,
    BN_MOMENTUM,
    RESNET_WIDTH,
    ResNetArchitecture,
    from_mlx_layout,
    init_weights,
    to_mlx_layout,
)


class ConvBN(nn.Module):
    """A bias-free convolution ("same" padding, given stride) and its batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)

    def __call__(self, x: mx.array) -> mx.array:
        return self.bn(self.conv(x))


class ResidualBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the shortcut is the identity, or a
    1x1 ``ConvBN`` where the block changes the width or halves the image."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        if stride != 1 or c_in != c_out:
            self.shortcut = ConvBN(c_in, c_out, 1, stride)

    def __call__(self, x: mx.array) -> mx.array:
        y = nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return nn.relu(y + (self.shortcut(x) if "shortcut" in self else x))


class ResNet(nn.Module):
    """The MLX twin of ``cnn.pt.resnet.ResNet``: same blocks, names, initial weights and outputs.

    Input: float32 ``(N, H, W, C)``, any H and W; output: log-probabilities
    ``(N, num_classes)``. ``nn.BatchNorm`` uses the batch's statistics in train mode and its
    running ones (frozen arrays: saved with the weights, never trained) in eval mode, updated
    as torch's (momentum 0.1, unbiased batch variance). Parameter names are those of
    ``cnn.schema.ResNetArchitecture.shapes()`` without torch's ``num_batches_tracked``, in the
    MLX layout (``cnn.schema.to_mlx_layout``).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = RESNET_WIDTH,
                 seed: int = 0):
        """
        Args:
            in_channels: image channels (3 for RGB).
            num_classes: number of classes.
            width: channels of the stem and the first stage.
            seed: seed of the initial weights.
        """
        super().__init__()
        self.arch = ResNetArchitecture(in_channels, num_classes, width)
        self.stem = ConvBN(in_channels, width, 3)
        self.blocks = [ResidualBlock(*shape) for shape in self.arch.block_widths()]
        self.head = nn.Linear(self.arch.block_widths()[-1][1], num_classes)
        self.load_numpy(init_weights(self.arch, seed))

    def __call__(self, x: mx.array) -> mx.array:
        x = nn.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        x = self.head(x.mean(axis=(1, 2)))
        if x.dtype in (mx.float16, mx.bfloat16):  # as torch's autocast: the log-softmax in float32
            x = x.astype(mx.float32)
        return x - mx.logsumexp(x, axis=1, keepdims=True)

    def load_numpy(self, weights: dict[str, np.ndarray]) -> None:
        """Copy canonical-layout (torch) numpy weights and buffers in; names and shapes must match."""
        mlx_weights = to_mlx_layout(weights, self.arch)
        self.load_weights([(k, mx.array(v)) for k, v in mlx_weights.items()], strict=True)

    def numpy_weights(self) -> dict[str, np.ndarray]:
        """The weights and buffers as canonical-layout (torch) numpy arrays."""
        flat = {k: np.array(v) for k, v in tree_flatten(self.parameters())}
        return from_mlx_layout(flat, self.arch)
