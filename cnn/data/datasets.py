"""The datasets: the four official ones and a folder of the user's own images (``folder``);
what each one is, and loading one into uint8 numpy arrays."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn.data import cifar, fetch, folder
from cnn.data.batches import split_train_val
from cnn.data.idx import read_idx_pair
from cnn.errors import ConfigError, DataError

FOLDER = "folder"  # the user's own images (cnn.data.folder); its spec depends on data_dir
FOLDER_DEFAULT_SIZE, FOLDER_DEFAULT_CHANNELS = 32, 3


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


def get_spec(name: str, data_dir: str | os.PathLike | None = None, image_size: int | None = None,
             channels: int | None = None) -> DatasetSpec:
    """The spec of dataset ``name``; an unknown name raises ``DataError`` listing valid ones.

    ``folder``'s spec is read from ``data_dir`` (its class folder names; no image is opened)
    and takes its image shape from ``image_size`` and ``channels`` (default 32 and 3). The
    official datasets have a fixed shape: ``image_size``/``channels`` may only repeat it.
    """
    _check_shape_options(image_size, channels)
    if name == FOLDER:
        size = FOLDER_DEFAULT_SIZE if image_size is None else image_size
        depth = FOLDER_DEFAULT_CHANNELS if channels is None else channels
        return DatasetSpec(FOLDER, f"the folder {data_dir}", folder.folder_classes(data_dir),
                           (size, size, depth), 0, 0)
    try:
        spec = DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(f"unknown dataset {name!r}: choose one of "
                        f"{', '.join([*DATASETS, FOLDER])}") from None
    for key, value, own in (("image_size", image_size, spec.image_size),
                            ("channels", channels, spec.channels)):
        if value is not None and value != own:
            raise ConfigError(f"data.{key} {value} does not apply to {name}, whose images are "
                              f"{spec.image_size}x{spec.image_size}x{spec.channels}; it is for "
                              f"dataset {FOLDER} (or leave it out)")
    return spec


def _check_shape_options(image_size, channels) -> None:
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size < 8):
        raise ConfigError(f"data.image_size {image_size!r}: give a whole number of pixels, at least "
                          f"8 (the network pools three times by 2)")
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"data.channels {channels!r}: choose 1 (grey) or 3 (RGB)")


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
                 download: bool = True, image_size: int | None = None, channels: int | None = None,
                 test_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Find (see ``cnn.data.fetch``), verify and read dataset ``name`` into memory.

    ``data_dir`` is searched first and receives downloads; ``download=False`` never touches
    the network. Any problem with the files raises a one-line ``DataError``. ``folder`` reads
    the user's tree at ``data_dir`` (``cnn.data.folder``) at ``image_size`` x ``channels``;
    without ``train/`` and ``test/`` in it, a seeded ``test_fraction`` of it is the test set.
    """
    spec = get_spec(name, data_dir, image_size, channels)
    if spec.name == FOLDER:
        return _load_folder(spec, data_dir, test_fraction, seed)
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


def _load_folder(spec: DatasetSpec, data_dir, test_fraction: float, seed: int) -> Dataset:
    listing, decoded = folder.load_folder(data_dir, spec.image_shape)
    if listing.split:
        train_idx, test_idx = np.flatnonzero(decoded.parts == 0), np.flatnonzero(decoded.parts == 1)
    else:
        if isinstance(test_fraction, bool) or not 0 < test_fraction < 1:
            raise ConfigError(f"data.test_fraction {test_fraction!r}: give a share in (0, 1) of "
                              f"{listing.root} to hold out as the test set")
        train_idx, test_idx = split_train_val(len(decoded.labels), test_fraction, seed)
    missing = sorted(set(decoded.labels[test_idx].tolist()) - set(decoded.labels[train_idx].tolist()))
    if missing:
        raise DataError(f"the test set of {listing.root} has classes the train set lacks: "
                        f"{', '.join(spec.classes[i] for i in missing)}; add train images of them")
    if not len(test_idx):
        raise DataError(f"the test set of {listing.root} is empty: add images to {listing.root / 'test'}"
                        if listing.split else f"data.test_fraction {test_fraction} of "
                        f"{len(decoded.labels)} images of {listing.root} holds out none: raise it")
    train = ImageSet(decoded.images[train_idx], decoded.labels[train_idx])
    test = ImageSet(decoded.images[test_idx], decoded.labels[test_idx])
    sized = dataclasses.replace(spec, train_size=len(train), test_size=len(test))
    return Dataset(sized, train, test, listing.root, verified=False)
