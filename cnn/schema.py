"""What both frameworks must agree on: log tags, checkpoint fields and the weight layout.

The project's networks are fixed: the seed CNN (``cnn.pt.model``, ``cnn.mx.model``; its
hyper-shape is ``Architecture``) and a small ResNet with batch normalisation (``cnn.pt.resnet``,
``cnn.mx.resnet``; ``ResNetArchitecture``). This module owns their parameter and buffer names
and shapes, draws the initial weights once in numpy, and converts between the two layouts:

* the *canonical* layout is PyTorch's: conv kernels ``(out, in, kh, kw)`` (OIHW), linear
  weights ``(out, in)`` and the first linear layer reading a feature map flattened as
  channels, then rows, then columns (CHW);
* the *MLX* layout keeps conv kernels ``(out, kh, kw, in)`` (OHWI) and flattens the feature map
  as rows, columns, channels (HWC), because MLX convolutions are channels-last.

Batch normalisation keeps the same names on both sides (``weight``, ``bias``, ``running_mean``,
``running_var``), except torch's ``num_batches_tracked`` counter, which MLX's ``nn.BatchNorm``
does not have: it is left out of the MLX layout and comes back as 0 (torch reads it only for a
cumulative average, ``momentum=None``, which neither side's network uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Scalar tags both loggers write, with the step axis Lightning uses (the number of optimizer
# steps taken so far). Every write also carries ``epoch`` at the same step.
TRAIN_LOSS, TRAIN_ACC = "train/loss", "train/acc"
# What both Classifiers log only once training is under way (their ``training_tags``, see ``cnn.monitors``).
TRAINING_TAGS = (TRAIN_LOSS, TRAIN_ACC)
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
    """Draw the initial weights once, framework-free, in the canonical layout (``arch``:
    ``Architecture`` or ``ResNetArchitecture``).

    Same distribution as PyTorch's defaults for Conv2d/Linear (uniform in +-1/sqrt(fan_in)
    for weights and biases), so the torch side behaves as a stock model would, but drawn from
    numpy so that one seed gives the same numbers in both frameworks.
    """
    if isinstance(arch, ResNetArchitecture):
        return _init_resnet(arch, seed)
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in arch.shapes().items():
        layer = name.rsplit(".", 1)[0]
        fan_in = int(np.prod(arch.shapes()[f"{layer}.weight"][1:]))
        bound = 1.0 / np.sqrt(fan_in)
        weights[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return weights


# The ResNet for small images: a 3x3 stem, one residual block per stage at widths
# (w, 2w, 4w) (the last two halve the image), global average pooling, one linear layer.
RESNET_STAGES = (1, 2, 4)      # stage width as a multiple of the stem's
RESNET_STRIDES = (1, 2, 2)     # each stage's first convolution
RESNET_WIDTH = 16
BN_MOMENTUM, BN_EPS = 0.1, 1e-5
BN_COUNTER = "num_batches_tracked"  # torch only


@dataclass(frozen=True)
class ResNetArchitecture:
    """The ResNet's hyper-shape: any image size (it pools globally), ``width`` channels in the
    stem. Block ``i`` has ``conv1``/``bn1``, ``conv2``/``bn2`` and, where the shape changes, a
    1x1 ``shortcut`` convolution with its own batch norm."""

    in_channels: int
    num_classes: int
    width: int = RESNET_WIDTH

    def _conv_bn(self, prefix: str, bn: str, c_in: int, c_out: int, k: int) -> dict:
        return {f"{prefix}weight": (c_out, c_in, k, k),
                **{f"{bn}{n}": (c_out,) for n in ("weight", "bias", "running_mean", "running_var")},
                f"{bn}{BN_COUNTER}": ()}

    def block_widths(self) -> list[tuple[int, int, int]]:
        """``(in, out, stride)`` of each residual block."""
        widths = [self.width * m for m in RESNET_STAGES]
        return [(c_in, c_out, s) for c_in, c_out, s in zip([self.width, *widths], widths, RESNET_STRIDES)]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter and buffer name -> shape in the canonical (torch) layout, in definition order."""
        out = self._conv_bn("stem.conv.", "stem.bn.", self.in_channels, self.width, 3)
        for i, (c_in, c_out, stride) in enumerate(self.block_widths()):
            b = f"blocks.{i}."
            out |= self._conv_bn(f"{b}conv1.", f"{b}bn1.", c_in, c_out, 3)
            out |= self._conv_bn(f"{b}conv2.", f"{b}bn2.", c_out, c_out, 3)
            if stride != 1 or c_in != c_out:
                out |= self._conv_bn(f"{b}shortcut.conv.", f"{b}shortcut.bn.", c_in, c_out, 1)
        features = self.width * RESNET_STAGES[-1]
        return out | {"head.weight": (self.num_classes, features), "head.bias": (self.num_classes,)}

    def num_parameters(self) -> int:
        """Trained numbers only: the batch norms' running statistics are buffers."""
        return sum(int(np.prod(s)) for n, s in self.shapes().items()
                   if not n.endswith(("running_mean", "running_var", BN_COUNTER)))


def architecture_of(weights: dict, in_channels: int, image_size: int,
                    num_classes: int) -> Architecture | ResNetArchitecture:
    """Which of the project's networks ``weights`` (names -> arrays, either layout) belong to,
    with the input shape and class count a checkpoint's hyper-parameters give."""
    stem = weights.get("stem.conv.weight")
    if stem is not None:
        return ResNetArchitecture(in_channels, num_classes, int(np.shape(stem)[0]))
    return Architecture(in_channels, image_size, num_classes)


def network_name(weights) -> str:
    """Which of the project's networks names like these (``weights``: names -> anything) are."""
    if "stem.conv.weight" in weights:
        return "the ResNet"
    return "the seed CNN" if "conv1.weight" in weights else "an unknown network"


# torch's initial batch norm: scale 1, shift 0, the running statistics of a standard normal
BN_INITIAL = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0, BN_COUNTER: 0}


def _init_resnet(arch: ResNetArchitecture, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in arch.shapes().items():
        layer, leaf = name.rsplit(".", 1)
        if layer.rsplit(".", 1)[-1].startswith("bn"):
            dtype = np.int64 if leaf == BN_COUNTER else np.float32
            weights[name] = np.full(shape, BN_INITIAL[leaf], dtype=dtype)
            continue
        # convolutions and the head as torch's defaults: uniform in +-1/sqrt(fan_in)
        bound = 1.0 / np.sqrt(int(np.prod(arch.shapes()[f"{layer}.weight"][1:])))
        weights[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return weights


def _fc1_chw_to_hwc(weight: np.ndarray, arch: Architecture) -> np.ndarray:
    s, c = arch.pooled_size, CONV_CHANNELS[-1]
    return weight.reshape(-1, c, s, s).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _fc1_hwc_to_chw(weight: np.ndarray, arch: Architecture) -> np.ndarray:
    s, c = arch.pooled_size, CONV_CHANNELS[-1]
    return weight.reshape(-1, s, s, c).transpose(0, 3, 1, 2).reshape(weight.shape[0], -1)


def to_mlx_layout(weights: dict[str, np.ndarray], arch) -> dict[str, np.ndarray]:
    """Canonical (torch) layout -> MLX layout (``arch``: ``Architecture`` or
    ``ResNetArchitecture``); names are unchanged, torch's batch counters are left out."""
    out = {}
    for name, w in weights.items():
        if name.endswith(BN_COUNTER):
            continue
        if w.ndim == 4:  # convolution kernels, the only 4-d arrays
            w = w.transpose(0, 2, 3, 1)
        elif name == "fc1.weight" and isinstance(arch, Architecture):
            w = _fc1_chw_to_hwc(w, arch)
        out[name] = np.ascontiguousarray(w)
    return out


def from_mlx_layout(weights: dict[str, np.ndarray], arch) -> dict[str, np.ndarray]:
    """MLX layout -> canonical (torch) layout; names are unchanged, and each batch norm gets
    torch's ``num_batches_tracked`` as 0 (MLX does not count)."""
    out = {}
    for name, w in weights.items():
        if w.ndim == 4:
            w = w.transpose(0, 3, 1, 2)
        elif name == "fc1.weight" and isinstance(arch, Architecture):
            w = _fc1_hwc_to_chw(w, arch)
        out[name] = np.ascontiguousarray(w)
    for name in arch.shapes():
        if name.endswith(BN_COUNTER):
            out.setdefault(name, np.zeros((), np.int64))
    return out


def check_weights(weights: dict[str, np.ndarray], arch, layout: str) -> None:
    """Raise ValueError (one line) unless ``weights`` are exactly this network's, in ``layout``."""
    expected = arch.shapes() if layout == "torch" else {
        n: tuple(w.shape) for n, w in to_mlx_layout(
            {n: np.empty(s, np.float32) for n, s in arch.shapes().items()}, arch).items()}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    theirs, ours = network_name(weights), network_name(expected)
    if (missing or extra) and theirs != ours:
        raise ValueError(f"weights of {theirs} do not fit {ours}: set model.net as in the run "
                         f"that trained them (its config.yaml)")
    if missing or extra:
        raise ValueError(f"weights do not fit this network: missing {missing}, unexpected {extra}")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != tuple(shape):
            raise ValueError(f"weights do not fit this network: {name} has shape "
                             f"{tuple(weights[name].shape)}, expected {tuple(shape)} "
                             f"(another dataset or architecture?)")
