"""Mirror of lightning.pytorch.core: the ``LightningModule``."""

from cnn.mx.lightning.core.module import LightningModule

__all__ = ["LightningModule"]
