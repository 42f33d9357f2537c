"""The framework-free half of both DataModules: the ``data:`` section of every config."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnn.data.batches import BatchPlan
from cnn.data.datasets import DatasetSpec, ImageSet, get_spec
from cnn.data.images import load_image
from cnn.data.pipeline import Normalization, NumpyBatches, PreparedData
from cnn.errors import ConfigError, DataError


def check_batch_fits_data(batch_size: int, train_images: int, dataset: str) -> None:
    """A training batch larger than the training split is one silent giant batch: refuse it."""
    if batch_size > train_images:
        raise ConfigError(f"data.batch_size is {batch_size}, but {dataset} has {train_images} "
                          f"training images (after the validation split); ask for at most {train_images}")


class DataModuleBase:
    """Which data, how split, how batched; shared verbatim by the torch and MLX DataModules.

    The framework sides subclass it, set ``layout`` ("NCHW" or "NHWC") and override
    ``to_tensors`` to turn a numpy batch into their tensors; one may also override
    ``resident`` to keep a split's arrays on its accelerator and cut batches there
    (``ResidentBatches``: same batches, same order, same resume). Lifecycle, as in Lightning:
    ``prepare_data()`` makes sure the files are here (downloading if allowed), ``setup(stage)``
    loads and splits them once, then ``*_dataloader()`` hand out re-iterable batch streams.
    Checking the files means reading them, so ``prepare_data`` keeps what it read for ``setup``
    (on a rank that does not run it, ``setup`` reads them) and does nothing once the data is
    loaded (the test that ends ``fit`` reads nothing again).
    ``predict_files`` are classified by ``predict``; a file that cannot be read is reported in
    ``predict_failures`` and skipped, so the others are still classified.
    """

    layout = "NHWC"

    def __init__(self, dataset: str = "mnist", data_dir: str | None = None,
                 batch_size: int = 128, eval_batch_size: int = 1000,
                 val_fraction: float = 0.1, augment: bool = False, seed: int = 0,
                 download: bool = True, predict_files: list[str] | None = None,
                 image_size: int | None = None, channels: int | None = None,
                 test_fraction: float = 0.1):
        """
        Args:
            dataset: one of mnist, fashion_mnist, cifar10, cifar100, or folder (your own
                images: ``data_dir`` holds one subfolder of images per class).
            data_dir: where the dataset files are (searched first; downloads go here); for
                folder, the folder of class subfolders.
            batch_size: training batch size.
            eval_batch_size: batch size for validation, test and predict.
            val_fraction: share of the official training set held out for validation.
            augment: random crop (pad 4) and horizontal flip of training images (CIFAR).
            seed: seed of the split and of the batch order (linked from ``seed_everything``).
            download: fetch missing files from the official mirrors.
            predict_files: image files (PNG, JPEG) to classify with ``predict``.
            image_size: folder: side in pixels every image is resized to (default 32); the
                official datasets keep their own.
            channels: folder: 1 (grey) or 3 (RGB, the default) channels per image.
            test_fraction: folder without train/ and test/ subfolders: the seeded share held
                out as the test set.
        """
        super().__init__()
        self.spec: DatasetSpec = get_spec(dataset, data_dir, image_size, channels)
        self.image_size, self.channels, self.test_fraction = image_size, channels, test_fraction
        self.dataset, self.data_dir, self.download = dataset, data_dir, download
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_fraction, self.augment, self.seed = val_fraction, augment, seed
        self.predict_files = list(predict_files or [])
        self.predict_failures: list[tuple[str, str]] = []
        self.predicted_files: list[str] = []
        self.data: PreparedData | None = None
        self.rank, self.world_size = 0, 1

    @property
    def norm(self) -> Normalization | None:
        return self.data.norm if self.data is not None else None

    def prepare_data(self) -> None:
        if self.data is None and not self.predict_files:  # predicting needs no dataset
            self._load()

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and self.predict_files:
            return
        if self.data is None:
            self._load()
        if stage in (None, "fit"):
            check_batch_fits_data(self.batch_size, len(self.data.splits["train"].labels), self.dataset)

    def _load(self) -> None:
        self.data = PreparedData(self.dataset, self.data_dir, self.val_fraction, self.seed,
                                 download=self.download, **self._folder_options())

    def _folder_options(self) -> dict:
        return {"image_size": self.image_size, "channels": self.channels,
                "test_fraction": self.test_fraction}

    def to_tensors(self, batch: tuple[np.ndarray, np.ndarray]):
        return batch

    def resident(self, split: str):
        """``split``'s whole arrays already on the device, or None: batches are numpy slices
        turned into tensors by ``to_tensors`` (the default, and the only way for augmented
        batches, which are made on the host). A resident source has ``indices(order)``, one
        epoch's int64 sample order moved to the device, and ``take(index)``, the batch of a
        device slice of it (see ``ResidentBatches``)."""
        return None

    def _stream(self, split: str, batch_size: int, shuffle: bool = False,
                augment: bool = False, limit: int | None = None) -> "TensorBatches":
        if self.data is None:
            self.setup()
        numpy_batches = self.data.batches(split, batch_size, self.layout, shuffle=shuffle,
                                          augment=augment, rank=self.rank,
                                          world_size=self.world_size, limit=limit)
        source = None if augment else self.resident(split)
        if source is not None:  # limit keeps a split's first images: the same indices
            return TensorBatches(ResidentBatches(numpy_batches, source), _unchanged)
        return TensorBatches(numpy_batches, self.to_tensors)

    @property
    def overfitting(self) -> bool:
        """The trainer's ``overfit_batches`` is on: train on the same first batches every epoch."""
        return bool(getattr(getattr(self, "trainer", None), "overfit_batches", 0))

    def train_dataloader(self):
        # Lightning turns shuffling off for overfit_batches only in torch DataLoaders' samplers;
        # these streams order their own batches, so they honour the flag here.
        return self._stream("train", self.batch_size, shuffle=not self.overfitting,
                            augment=self.augment)

    def train_probe_dataloader(self):
        """The first images of the train split, as many as validation has, never augmented."""
        return self._stream("train", self.eval_batch_size,
                            limit=len(self.data.splits["val"].labels))

    def val_dataloader(self):
        return self._stream("val", self.eval_batch_size)

    def test_dataloader(self):
        return self._stream("test", self.eval_batch_size)

    def predict_dataloader(self):
        if not self.predict_files:
            return self.test_dataloader()
        images, self.predict_failures, self.predicted_files = [], [], []
        for path in self.predict_files:
            try:
                images.append(load_image(Path(path), self.spec.image_shape))
                self.predicted_files.append(path)
            except DataError as error:
                self.predict_failures.append((path, str(error)))
        stacked = np.stack(images) if images else np.zeros((0, *self.spec.image_shape), np.uint8)
        unlabelled = ImageSet(stacked, np.full(len(stacked), -1, np.int64))
        plan = BatchPlan(len(stacked), self.eval_batch_size, shuffle=False)
        return TensorBatches(NumpyBatches(unlabelled, plan, self.layout), self.to_tensors)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _unchanged(batch):
    return batch


class ResidentBatches(NumpyBatches):
    """``batches`` cut from arrays that already sit on the device, by index, on the device.

    Same plan, epoch, resume position and rank shard as ``batches`` (whose state machine it
    inherits): only where a batch's pixels come from differs. At the start of each pass the
    epoch's sample order (this rank's shard, in ``BatchPlan.indices`` order) goes to the device
    in one copy; batch ``i`` is then ``source.take`` of its slice of that order, so no step
    copies anything from the host (a host-to-device copy of pageable memory makes the host
    wait for the device). Not for augmented batches (made on the host).
    """

    def __init__(self, batches: NumpyBatches, source):
        if batches.augment:
            raise ValueError("augmented batches are made on the host; they cannot be resident")
        super().__init__(batches.images, batches.plan, batches.layout, seed=batches.seed)
        self.epoch, self.batches_done = batches.epoch, batches.batches_done
        self._resume_at = batches.resume_at
        self.source = source
        self._order = None  # (device order, batch boundaries) of the current pass

    def __iter__(self):
        order = self.plan.indices(self.epoch)
        bounds = np.cumsum([0] + [len(idx) for idx in order]).tolist()
        flat = np.concatenate(order) if order else np.zeros(0, np.int64)
        self._order = (self.source.indices(flat), bounds)
        yield from super().__iter__()  # reads self.epoch and the resume position as it starts

    def _batch(self, idx: np.ndarray, batch_index: int):
        device_order, bounds = self._order
        return self.source.take(device_order[bounds[batch_index]:bounds[batch_index + 1]])


class TensorBatches:
    """A ``NumpyBatches`` stream whose batches come out as one framework's tensors.

    Passes ``len``, ``set_epoch``, ``sampler``, ``state_dict`` and ``load_state_dict``
    through, so the Lightning and MLX loops can drive the epoch and resume mid-epoch.
    """

    # Lightning reads ``sampler`` (to call ``set_epoch``) and then ``batch_sampler``.
    batch_sampler = None

    def __init__(self, batches: NumpyBatches, convert):
        self.batches, self.convert = batches, convert

    @property
    def sampler(self) -> NumpyBatches:
        return self.batches

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return (self.convert(batch) for batch in self.batches)

    def state_dict(self) -> dict:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state)
