"""Mirror of lightning.pytorch.core.mixins: what ``LightningModule`` and ``LightningDataModule`` share."""
