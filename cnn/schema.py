"""What both frameworks must agree on: log tags, checkpoint fields and the weight layout.

The network is fixed (see ``cnn.pt.model`` and ``cnn.mx.model``); this module owns its
parameter names and shapes, draws the initial weights once in numpy, and converts between
the two layouts:

* the *canonical* layout is PyTorch's: conv kernels ``(out, in, kh, kw)`` (OIHW), linear
  weights ``(out, in)`` and the first linear layer reading a feature map flattened as
  channels, then rows, then columns (CHW);
* the *MLX* layout keeps conv kernels ``(out, kh, kw, in)`` (OHWI) and flattens the feature map
  as rows, columns, channels (HWC), because MLX convolutions are channels-last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Scalar tags both loggers write, with the step axis Lightning uses (the number of optimizer
# steps taken so far). Every write also carries ``epoch`` at the same step.
TRAIN_LOSS, TRAIN_ACC = "train/loss", "train/acc"
VAL_LOSS, VAL_ACC = "val/loss", "val/acc"
TEST_LOSS, TEST_ACC = "test/loss", "test/acc"
EPOCH = "epoch"
TEST_CLASS_ACC_PREFIX = "test/acc_class/"
TEST_CONFUSION_IMAGE = "test/confusion_matrix"

# The checkpoint fields a converted or native checkpoint carries beside the weights.
CKPT_FORMAT = "cnn-weights/1"
CKPT_META_FIELDS = ("format", "framework", "layout", "dataset", "in_channels", "image_size",
                    "num_classes", "classes", "mean", "std")

CONV_CHANNELS = (20, 50, 100)
KERNEL = 5
DEFAULT_DROPOUT = 0.3


def fc_features(image_size: int) -> int:
    """Width of the flattened feature map: 100 channels of (size // 8)^2 after three pools."""
    return CONV_CHANNELS[-1] * (image_size // 8) ** 2


@dataclass(frozen=True)
class Architecture:
    """The seed network's hyper-shape; everything else about the weights follows from it."""

    in_channels: int
    image_size: int
    num_classes: int

    @property
    def fc(self) -> int:
        return fc_features(self.image_size)

    @property
    def pooled_size(self) -> int:
        return self.image_size // 8

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape in the canonical (torch) layout, in definition order."""
        c1, c2, c3 = CONV_CHANNELS
        fc = self.fc
        return {
            "conv1.weight": (c1, self.in_channels, KERNEL, KERNEL), "conv1.bias": (c1,),
            "conv2.weight": (c2, c1, KERNEL, KERNEL), "conv2.bias": (c2,),
            "conv3.weight": (c3, c2, KERNEL, KERNEL), "conv3.bias": (c3,),
            "fc1.weight": (fc // 2, fc), "fc1.bias": (fc // 2,),
            "fc2.weight": (fc // 4, fc // 2), "fc2.bias": (fc // 4,),
            "fc3.weight": (self.num_classes, fc // 4), "fc3.bias": (self.num_classes,),
        }

    def num_parameters(self) -> int:
        return sum(int(np.prod(s)) for s in self.shapes().values())


def init_weights(arch: Architecture, seed: int) -> dict[str, np.ndarray]:
    """Draw the initial weights once, framework-free, in the canonical layout.

    Same distribution as PyTorch's defaults for Conv2d/Linear (uniform in +-1/sqrt(fan_in)
    for weights and biases), so the torch side behaves as a stock model would, but drawn from
    numpy so that one seed gives the same numbers in both frameworks.
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in arch.shapes().items():
        layer = name.rsplit(".", 1)[0]
        fan_in = int(np.prod(arch.shapes()[f"{layer}.weight"][1:]))
        bound = 1.0 / np.sqrt(fan_in)
        weights[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return weights


def _fc1_chw_to_hwc(weight: np.ndarray, arch: Architecture) -> np.ndarray:
    s, c = arch.pooled_size, CONV_CHANNELS[-1]
    return weight.reshape(-1, c, s, s).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _fc1_hwc_to_chw(weight: np.ndarray, arch: Architecture) -> np.ndarray:
    s, c = arch.pooled_size, CONV_CHANNELS[-1]
    return weight.reshape(-1, s, s, c).transpose(0, 3, 1, 2).reshape(weight.shape[0], -1)


def to_mlx_layout(weights: dict[str, np.ndarray], arch: Architecture) -> dict[str, np.ndarray]:
    """Canonical (torch) layout -> MLX layout; names are unchanged."""
    out = {}
    for name, w in weights.items():
        if name.startswith("conv") and name.endswith(".weight"):
            w = w.transpose(0, 2, 3, 1)
        elif name == "fc1.weight":
            w = _fc1_chw_to_hwc(w, arch)
        out[name] = np.ascontiguousarray(w)
    return out


def from_mlx_layout(weights: dict[str, np.ndarray], arch: Architecture) -> dict[str, np.ndarray]:
    """MLX layout -> canonical (torch) layout; names are unchanged."""
    out = {}
    for name, w in weights.items():
        if name.startswith("conv") and name.endswith(".weight"):
            w = w.transpose(0, 3, 1, 2)
        elif name == "fc1.weight":
            w = _fc1_hwc_to_chw(w, arch)
        out[name] = np.ascontiguousarray(w)
    return out


def check_weights(weights: dict[str, np.ndarray], arch: Architecture, layout: str) -> None:
    """Raise ValueError (one line) unless ``weights`` are exactly this network's, in ``layout``."""
    expected = arch.shapes() if layout == "torch" else {
        n: tuple(w.shape) for n, w in to_mlx_layout(
            {n: np.empty(s, np.float32) for n, s in arch.shapes().items()}, arch).items()}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise ValueError(f"weights do not fit this network: missing {missing}, unexpected {extra}")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != tuple(shape):
            raise ValueError(f"weights do not fit this network: {name} has shape "
                             f"{tuple(weights[name].shape)}, expected {tuple(shape)} "
                             f"(another dataset or architecture?)")
