"""Mirror of lightning.pytorch.core: the ``LightningModule`` and ``LightningDataModule``."""

from cnn.mx.lightning.core.datamodule import LightningDataModule
from cnn.mx.lightning.core.module import LightningModule

__all__ = ["LightningDataModule", "LightningModule"]
