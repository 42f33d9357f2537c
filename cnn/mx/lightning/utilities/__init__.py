"""Mirror of lightning.pytorch.utilities: seeds, collectives, rank-zero-only loggers."""
