"""The data side of the MLX port: the shared DataModule, yielding mlx arrays."""

from __future__ import annotations

from cnn.mx.lightning.core.datamodule import LightningDataModule

import mlx.core as mx
import numpy as np

from cnn.data.datamodule import DataModuleBase


class DataModule(DataModuleBase, LightningDataModule):
    """``cnn.data.datamodule.DataModuleBase`` as the mirror's LightningDataModule (NHWC uint8 arrays).

    Under ``mx.distributed`` each rank takes its own shard (``rank``/``world_size`` are read
    from the trainer in ``setup``; the MLX Trainer sets ``datamodule.trainer`` before calling
    it, as Lightning does): positions r, r + N, ... of the epoch's one global order, so every
    rank has the same number of batches.
    """

    layout = "NHWC"

    def setup(self, stage: str | None = None) -> None:
        if self.trainer is not None:
            self.rank, self.world_size = self.trainer.global_rank, self.trainer.world_size
        super().setup(stage)

    def to_tensors(self, batch: tuple[np.ndarray, np.ndarray]):
        images, labels = batch
        return mx.array(images), mx.array(labels)
