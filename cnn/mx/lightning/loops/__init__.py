"""Mirror of lightning.pytorch.loops: the fit, training-epoch, evaluation and prediction loops."""
