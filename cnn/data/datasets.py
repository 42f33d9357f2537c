"""The four datasets: what each one is, and loading one into uint8 numpy arrays."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn.data import cifar, fetch
from cnn.data.idx import read_idx_pair
from cnn.errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know about a dataset, without its files.

    ``name`` is the registry key; ``title`` the human name; ``classes`` the class names in
    label order (for CIFAR the official meta-file lists, hard-coded so prediction works
    without the data; ``load_dataset`` replaces them by what the files' meta says);
    ``image_shape`` is (H, W, C) of the uint8 images; ``train_size``/``test_size`` the
    official split sizes.
    """

    name: str
    title: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]
    train_size: int
    test_size: int

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.image_shape[2]

    @property
    def image_size(self) -> int:
        """Side length in pixels (every supported dataset has square images)."""
        return self.image_shape[0]


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", "MNIST", tuple(str(d) for d in range(10)), (28, 28, 1),
                         60000, 10000),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"), (28, 28, 1), 60000, 10000),
    "cifar10": DatasetSpec("cifar10", "CIFAR-10", cifar.CIFAR10_CLASSES, (32, 32, 3),
                           cifar.OFFICIAL_TRAIN, cifar.OFFICIAL_TEST),
    "cifar100": DatasetSpec("cifar100", "CIFAR-100", cifar.CIFAR100_CLASSES, (32, 32, 3),
                            cifar.OFFICIAL_TRAIN, cifar.OFFICIAL_TEST),
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; an unknown name raises ``DataError`` listing valid ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(f"unknown dataset {name!r}: choose one of "
                        f"{', '.join(DATASETS)}") from None


@dataclass
class ImageSet:
    """Images and their labels: ``images`` uint8 (N, H, W, C), ``labels`` int64 (N,).

    Pixels stay uint8 (a quarter of float32's memory); each consumer normalises its batches.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} "
                             f"{self.images.shape}")
        if self.labels.dtype != np.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must be int64 ({len(self.images)},), got "
                             f"{self.labels.dtype} {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    """A loaded dataset: its spec (class names from the files' meta where they have one),
    the official ``train`` and ``test`` splits, the ``source`` directory they were read from,
    and whether every file matched its published checksum (``verified``; False for custom
    data in a directory the user chose)."""

    spec: DatasetSpec
    train: ImageSet
    test: ImageSet
    source: Path | None = None
    verified: bool = False


def _check(images: np.ndarray, labels: np.ndarray, spec: DatasetSpec, path) -> ImageSet:
    if images.shape[1:] != spec.image_shape:
        raise DataError(f"{path} holds {images.shape[1:]} images, {spec.title} has "
                        f"{spec.image_shape}; it belongs to another dataset, replace it")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(f"{path} has labels outside 0..{spec.num_classes - 1}; replace it")
    return ImageSet(images, labels)


def _official_sizes(spec: DatasetSpec, train: ImageSet, test: ImageSet, where: Path) -> None:
    if (len(train), len(test)) != (spec.train_size, spec.test_size):
        raise DataError(f"{where}: {len(train)} train / {len(test)} test images, the official "
                        f"{spec.title} has {spec.train_size} / {spec.test_size}; fetch it again")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None,
                 download: bool = True) -> Dataset:
    """Find (see ``cnn.data.fetch``), verify and read dataset ``name`` into memory.

    ``data_dir`` is searched first and receives downloads; ``download=False`` never touches
    the network. Any problem with the files raises a one-line ``DataError``.
    """
    spec = get_spec(name)
    found = fetch.locate(name, data_dir, download)
    if spec.name in ("mnist", "fashion_mnist"):
        f = found.files
        train = _check(*read_idx_pair(f["train-images-idx3-ubyte"],
                                      f["train-labels-idx1-ubyte"]),
                       spec, f["train-images-idx3-ubyte"])
        test = _check(*read_idx_pair(f["t10k-images-idx3-ubyte"], f["t10k-labels-idx1-ubyte"]),
                      spec, f["t10k-images-idx3-ubyte"])
        if found.verified:
            _official_sizes(spec, train, test, found.directory)
    else:
        reader = cifar.read_cifar10 if spec.name == "cifar10" else cifar.read_cifar100
        data = reader(found.directory, official=found.verified)
        train = ImageSet(data.train_images, data.train_labels)
        test = ImageSet(data.test_images, data.test_labels)
        spec = dataclasses.replace(spec, classes=data.label_names)  # the files are authoritative
    return Dataset(spec, train, test, found.directory, found.verified)
