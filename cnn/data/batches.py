"""Splitting, statistics, normalisation and batch order: the same numbers on every framework.

All randomness comes from ``np.random.default_rng`` (PCG64), whose streams are the same on
every platform and numpy version, so a seed means the same split and the same batch order for
the PyTorch and the MLX side alike.
"""

from __future__ import annotations

import math

import numpy as np

_STATS_CHUNK = 4096  # images per step of channel_stats: bounded memory on any dataset


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into sorted, disjoint int64 index arrays ``(train, val)``.

    ``round(n * val_fraction)`` indices, drawn by a permutation seeded with ``seed``, go to
    validation; the rest to training. Sorting keeps memory access in file order.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]).astype(np.int64), np.sort(order[:n_val]).astype(np.int64)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of uint8 NHWC images, on [0, 1].

    Counts each channel's 256 possible values chunk by chunk, then sums exactly in integers:
    no float copy of the dataset is made and the result does not depend on summation order
    (MNIST's train set gives 0.1307 / 0.3081).
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.size == 0:
        raise ValueError(f"channel_stats needs non-empty uint8 (N, H, W, C) images, got "
                         f"{images.dtype} {images.shape}")
    channels = images.shape[-1]
    counts = np.zeros((channels, 256), np.int64)
    for start in range(0, len(images), _STATS_CHUNK):
        chunk = images[start:start + _STATS_CHUNK].reshape(-1, channels)
        for c in range(channels):
            counts[c] += np.bincount(chunk[:, c], minlength=256)
    values = np.arange(256, dtype=np.int64)
    means, stds = [], []
    for c in range(channels):
        # Python ints: exact sums however large the dataset.
        n = int(counts[c].sum())
        s1 = int(counts[c] @ values)
        s2 = int(counts[c] @ (values * values))
        means.append(s1 / n / 255.0)
        stds.append(math.sqrt(max(n * s2 - s1 * s1, 0)) / n / 255.0)
    return tuple(means), tuple(stds)


class BatchPlan:
    """Which sample indices make up each batch of an epoch, for one rank of ``world_size``.

    Contract: the order depends only on ``(seed, epoch)`` (a permutation from
    ``np.random.default_rng([seed, epoch])``, or ``0..n-1`` without ``shuffle``), so every
    framework and every rank sees the same global order. Rank ``r`` takes every
    ``world_size``-th position starting at ``r`` (as torch's DistributedSampler does), so shards
    are disjoint and every rank gets the same number of samples and batches:

    * ``drop_last=False``: the order is padded by wrapping around to its start until it
      divides evenly (up to ``world_size - 1`` samples are seen twice per epoch); the last
      batch of each rank may be short.
    * ``drop_last=True``: the order is cut to a multiple of ``world_size`` and each rank drops
      its final partial batch; every batch is full and no sample repeats.
    """

    def __init__(self, num_samples: int, batch_size: int, shuffle: bool, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1):
        if num_samples < 0 or batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid BatchPlan(num_samples={num_samples}, batch_size="
                             f"{batch_size}, rank={rank}, world_size={world_size})")
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.rank, self.world_size = int(rank), int(world_size)
        if drop_last:
            self.shard_size = num_samples // world_size
        else:
            self.shard_size = -(-num_samples // world_size)

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank)."""
        if self.drop_last:
            return self.shard_size // self.batch_size
        return -(-self.shard_size // self.batch_size)

    def indices(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches for ``epoch``: a list of ``len(self)`` int64 index arrays."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_samples)
        else:
            order = np.arange(self.num_samples)
        if self.num_samples:
            # np.resize repeats the array cyclically (padding) or cuts it (drop_last).
            order = np.resize(order, self.shard_size * self.world_size)
        shard = order[self.rank::self.world_size].astype(np.int64)
        size = self.batch_size
        return [shard[i:i + size] for i in range(0, len(self) * size, size)]
