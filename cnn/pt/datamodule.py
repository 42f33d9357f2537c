"""The data side of the torch port: the shared DataModule, yielding torch tensors."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from cnn.data.datamodule import DataModuleBase


class DataModule(DataModuleBase, L.LightningDataModule):
    """``cnn.data.datamodule.DataModuleBase`` as a LightningDataModule (NCHW uint8 tensors).

    No torch DataLoader: the images already sit in memory as one uint8 array, so a batch is a
    slice, not 128 ``__getitem__`` calls and a collate. Under DDP each rank takes its own shard
    (``rank``/``world_size`` are read from the trainer in ``setup``): positions r, r + N, ... of
    the epoch's one global order, as ``DistributedSampler`` would, so ``len()`` is the per-rank
    batch count that ``estimated_stepping_batches`` needs. Lightning injects a sampler only into
    a torch ``DataLoader``, so it leaves these streams alone (``use_distributed_sampler`` has no
    effect on them); it calls ``.sampler.set_epoch`` each epoch, which picks the order.
    """

    layout = "NCHW"

    def setup(self, stage: str | None = None) -> None:
        if self.trainer is not None:
            self.rank, self.world_size = self.trainer.global_rank, self.trainer.world_size
        super().setup(stage)

    def to_tensors(self, batch: tuple[np.ndarray, np.ndarray]):
        images, labels = batch
        return torch.from_numpy(images), torch.from_numpy(labels)
