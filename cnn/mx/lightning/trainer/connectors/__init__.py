"""Mirror of lightning.pytorch.trainer.connectors: the trainer's concerns, one a module."""
