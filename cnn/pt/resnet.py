"""The project's ResNet in torch.nn (channels-first), with batch normalisation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cnn.schema import BN_EPS, BN_MOMENTUM, RESNET_WIDTH, ResNetArchitecture, init_weights


class ConvBN(nn.Module):
    """A bias-free convolution ("same" padding, given stride) and its batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class ResidualBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the shortcut is the identity, or a
    1x1 ``ConvBN`` where the block changes the width or halves the image."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.shortcut = ConvBN(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    """A small ResNet for small images: 3x3 stem, one residual block per stage at widths
    ``width``, ``2 * width``, ``4 * width`` (the last two halve the image), global average
    pooling, one linear layer (``cnn.schema.ResNetArchitecture``).

    Input: float32 ``(N, C, H, W)``, any H and W; output: log-probabilities
    ``(N, num_classes)``. Batch norm uses the batch's statistics in train mode and the running
    ones (buffers, saved with the weights) in eval mode. Parameter and buffer names and shapes
    are those of ``ResNetArchitecture.shapes()``; the initial weights are drawn by
    ``cnn.schema.init_weights``, so the MLX twin (``cnn.mx.resnet.ResNet``) with the same seed
    starts from the same numbers.
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
        self.blocks = nn.ModuleList(ResidualBlock(*shape) for shape in self.arch.block_widths())
        self.head = nn.Linear(self.arch.block_widths()[-1][1], num_classes)
        self.load_numpy(init_weights(self.arch, seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return torch.log_softmax(self.head(x.mean(dim=(2, 3))), dim=1)

    def load_numpy(self, weights: dict[str, np.ndarray]) -> None:
        """Copy canonical-layout numpy weights and buffers in (names and shapes must match)."""
        self.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})

    def numpy_weights(self) -> dict[str, np.ndarray]:
        """The weights and buffers as canonical-layout, C-contiguous numpy arrays."""
        return {k: v.detach().cpu().contiguous().numpy() for k, v in self.state_dict().items()}
