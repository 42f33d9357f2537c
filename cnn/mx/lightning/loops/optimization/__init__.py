"""Mirror of lightning.pytorch.loops.optimization."""
