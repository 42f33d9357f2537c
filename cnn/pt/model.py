"""The seed network in torch.nn (channels-first)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cnn.schema import CONV_CHANNELS, DEFAULT_DROPOUT, KERNEL, Architecture, init_weights


class SeedCNN(nn.Module):
    """Three 5x5 conv/ReLU/max-pool stages, then three linear layers with dropout.

    Input: float32 ``(N, C, H, W)``; output: log-probabilities ``(N, num_classes)``.
    Parameter names and shapes are those of ``cnn.schema.Architecture.shapes()``; the weights
    are drawn by ``cnn.schema.init_weights`` so the MLX twin starts from the same numbers.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10,
                 dropout: float = DEFAULT_DROPOUT, seed: int = 0):
        super().__init__()
        self.arch = Architecture(in_channels, image_size, num_classes)
        c1, c2, c3 = CONV_CHANNELS
        fc = self.arch.fc
        self.conv1 = nn.Conv2d(in_channels, c1, KERNEL, padding=KERNEL // 2)
        self.conv2 = nn.Conv2d(c1, c2, KERNEL, padding=KERNEL // 2)
        self.conv3 = nn.Conv2d(c2, c3, KERNEL, padding=KERNEL // 2)
        self.fc1 = nn.Linear(fc, fc // 2)
        self.fc2 = nn.Linear(fc // 2, fc // 4)
        self.fc3 = nn.Linear(fc // 4, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.load_numpy(init_weights(self.arch, seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = nn.functional.max_pool2d
        x = pool(torch.relu(self.conv1(x)), 2)
        x = pool(torch.relu(self.conv2(x)), 2)
        x = pool(torch.relu(self.conv3(x)), 2)
        x = torch.flatten(x, 1)
        x = torch.relu(self.dropout(self.fc1(x)))
        x = self.dropout(self.fc2(x))
        x = self.dropout(self.fc3(x))
        return torch.log_softmax(x, dim=1)

    def load_numpy(self, weights: dict[str, np.ndarray]) -> None:
        """Copy canonical-layout numpy weights in (names and shapes must match exactly)."""
        self.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})

    def numpy_weights(self) -> dict[str, np.ndarray]:
        """The weights as canonical-layout, C-contiguous numpy arrays (also after
        ``self.to(memory_format=torch.channels_last)``, which only changes the strides)."""
        return {k: v.detach().cpu().contiguous().numpy() for k, v in self.state_dict().items()}
