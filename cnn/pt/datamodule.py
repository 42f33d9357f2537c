"""The data side of the torch port: the shared DataModule, yielding torch tensors."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from cnn.data.datamodule import DataModuleBase
from cnn.data.datasets import ImageSet


class DeviceSplit:
    """One split's uint8 images (NCHW) and int64 labels, copied to ``device`` once.

    The resident source of ``cnn.data.datamodule.ResidentBatches``: ``indices`` moves an
    epoch's sample order to the device, ``take`` gathers a batch there (``index_select``).
    """

    def __init__(self, images: ImageSet, device: torch.device):
        self.device = torch.device(device)
        nchw = np.ascontiguousarray(images.images.transpose(0, 3, 1, 2))
        self.images = torch.from_numpy(nchw).to(self.device)
        self.labels = torch.from_numpy(np.ascontiguousarray(images.labels)).to(self.device)

    def indices(self, order: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64)).to(self.device)

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images.index_select(0, index), self.labels.index_select(0, index)


class DataModule(DataModuleBase, L.LightningDataModule):
    """``cnn.data.datamodule.DataModuleBase`` as a LightningDataModule (NCHW uint8 tensors).

    No torch DataLoader: the images already sit in memory as one uint8 array, so a batch is a
    slice, not 128 ``__getitem__`` calls and a collate. Under DDP each rank takes its own shard
    (``rank``/``world_size`` are read from the trainer in ``setup``): positions r, r + N, ... of
    the epoch's one global order, as ``DistributedSampler`` would, so ``len()`` is the per-rank
    batch count that ``estimated_stepping_batches`` needs. Lightning injects a sampler only into
    a torch ``DataLoader``, so it leaves these streams alone (``use_distributed_sampler`` has no
    effect on them); it calls ``.sampler.set_epoch`` each epoch, which picks the order.

    On a GPU (the trainer's root device is CUDA) each split's whole uint8 arrays are copied to
    that device once (MNIST's train split: 42 MB; CIFAR's: 138 MB) and every batch is cut there
    by index (``DeviceSplit``, ``ResidentBatches``): the same batches in the same order, shards
    and resume position as on the CPU, but no host-to-device copy per step, so Lightning's
    ``transfer_batch_to_device`` finds them in place. Augmented training batches (made on the
    host) and ``predict_files`` still come from the host. On the CPU nothing changes.
    """

    layout = "NCHW"
    _resident_device: torch.device | None = None  # set in setup: a CUDA root device, or None
    _resident_splits: dict | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.trainer is not None:
            self.rank, self.world_size = self.trainer.global_rank, self.trainer.world_size
            self.keep_resident_on(self.trainer.strategy.root_device)
        super().setup(stage)

    def keep_resident_on(self, device: torch.device) -> None:
        """Cut batches on ``device`` from resident copies of the splits if it is a CUDA device;
        on any other device batches come from the host (what ``setup`` decides under a trainer)."""
        self._resident_device = device if device.type == "cuda" else None

    def to_tensors(self, batch: tuple[np.ndarray, np.ndarray]):
        images, labels = batch
        return torch.from_numpy(images), torch.from_numpy(labels)

    def resident(self, split: str) -> DeviceSplit | None:
        device = self._resident_device
        if device is None or self.data is None:
            return None
        if self._resident_splits is None:
            self._resident_splits = {}
        key = (split, str(device))
        if key not in self._resident_splits:  # once per split and device, kept for every stage
            self._resident_splits[key] = DeviceSplit(self.data.splits[split], device)
        return self._resident_splits[key]
