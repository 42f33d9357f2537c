"""From a dataset name to batches of numpy arrays: the part of a DataModule both sides share.

``PreparedData`` loads and verifies a dataset, splits off validation, computes the
normalisation statistics on the train split only, and hands out ``NumpyBatches``: re-iterable
batch streams whose order depends only on (seed, epoch), so the torch and MLX DataModules feed
their models the same images in the same order. The framework sides only turn each numpy
batch into a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from cnn.data.batches import BatchPlan, channel_stats, split_train_val
from cnn.data.datasets import DatasetSpec, ImageSet, load_dataset

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation on the [0, 1] scale, from the train split."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


def random_crop_flip(images: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """The standard CIFAR augmentation on a uint8 NHWC batch: pad-and-crop, then mirror half.

    Zero padding, one random offset per image, a horizontal flip with probability one half.
    """
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    flip = rng.random(n) < 0.5
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


class NumpyBatches:
    """A re-iterable stream of ``(images uint8, labels int64)`` numpy batches.

    Contract: ``len()`` is the number of batches per epoch; ``set_epoch(e)`` (called by
    Lightning through ``.sampler`` and by the MLX Trainer directly) picks that epoch's order,
    which depends only on (seed, epoch, rank, world_size); images stay uint8 (a quarter of the
    bytes to move to a device; each model normalises on its side with ``Normalization``), laid
    out ``"NHWC"`` (MLX) or ``"NCHW"`` (torch). ``state_dict()`` / ``load_state_dict()`` record
    the epoch and how many batches were handed out, so a resumed run continues mid-epoch with
    the same remaining batches (only in that epoch: a run resumed at the next one starts it
    from its first batch). Handed out is trained on: Lightning prefetches no batch from an
    iterable that has a ``len()``, and the MLX Trainer none at all.
    """

    def __init__(self, images: ImageSet, plan: BatchPlan, layout: str,
                 augment: bool = False, seed: int = 0):
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"layout must be NHWC or NCHW, not {layout!r}")
        self.images, self.plan = images, plan
        self.layout, self.augment, self.seed = layout, augment, seed
        self.epoch = 0
        self.batches_done = 0  # in the current epoch
        self._resume_at = (0, 0)  # (epoch, batches to skip in it)

    # Lightning calls ``dataloader.sampler.set_epoch``; we are our own sampler.
    @property
    def sampler(self) -> "NumpyBatches":
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.plan)

    @property
    def resume_at(self) -> tuple[int, int]:
        """``(epoch, batches to skip in it)`` that the next pass starts from (``load_state_dict``)."""
        return self._resume_at

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self._resume_at = (self.epoch, int(state["batches_done"]))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = self.plan.indices(self.epoch)
        (epoch, skip), self._resume_at = self._resume_at, (0, 0)
        start = skip if epoch == self.epoch else 0
        for i in range(start, len(order)):
            self.batches_done = i + 1
            yield self._batch(order[i], i)
        self.batches_done = 0

    def _batch(self, idx: np.ndarray, batch_index: int):
        images = self.images.images[idx]
        if self.augment:
            # One generator per batch, so a resumed epoch draws what the uninterrupted one did.
            rng = np.random.default_rng([self.seed, self.epoch, batch_index])
            images = random_crop_flip(images, rng)
        if self.layout == "NCHW":
            images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        return images, self.images.labels[idx]


class PreparedData:
    """One dataset, loaded once, split and described, ready to hand out batch streams.

    ``train``/``val`` come from the official training set by a seeded split
    (``val_fraction``); ``test`` is the official test set. ``norm`` is computed on ``train``
    only. ``spec`` carries the class names and image shape the model is built from.
    ``image_size``, ``channels`` and ``test_fraction`` are for a ``folder`` dataset
    (``load_dataset``).
    """

    def __init__(self, dataset: str, data_dir: str | None = None, val_fraction: float = 0.1,
                 seed: int = 0, download: bool = True, image_size: int | None = None,
                 channels: int | None = None, test_fraction: float = 0.1):
        loaded = load_dataset(dataset, data_dir=data_dir, download=download,
                              image_size=image_size, channels=channels,
                              test_fraction=test_fraction, seed=seed)
        self.spec: DatasetSpec = loaded.spec
        train_idx, val_idx = split_train_val(len(loaded.train.labels), val_fraction, seed)
        self.seed = seed
        self.splits: dict[str, ImageSet] = {
            "train": _take(loaded.train, train_idx),
            "val": _take(loaded.train, val_idx),
            "test": loaded.test,
        }
        mean, std = channel_stats(self.splits["train"].images)
        self.norm = Normalization(tuple(mean), tuple(std))

    def batches(self, split: str, batch_size: int, layout: str, shuffle: bool = False,
                augment: bool = False, rank: int = 0, world_size: int = 1,
                limit: int | None = None) -> NumpyBatches:
        """A batch stream over ``split`` (``limit`` keeps only its first images)."""
        images = self.splits[split]
        if limit is not None:
            images = _take(images, np.arange(min(limit, len(images.labels))))
        plan = BatchPlan(len(images.labels), batch_size, shuffle=shuffle, seed=self.seed,
                         rank=rank, world_size=world_size)
        return NumpyBatches(images, plan, layout, augment=augment, seed=self.seed)


def _take(images: ImageSet, idx: Sequence[int] | np.ndarray) -> ImageSet:
    return ImageSet(images=images.images[idx], labels=images.labels[idx])
