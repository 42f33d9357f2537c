"""Mirror of lightning.pytorch.trainer.connectors.callback_connector: the order of the callbacks."""

from __future__ import annotations

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.callbacks.model_checkpoint import ModelCheckpoint


def reorder_callbacks(callbacks: list[Callback]) -> list[Callback]:
    """Checkpoint callbacks last, preserving relative order (Lightning's ``_reorder_callbacks``)."""
    return [c for c in callbacks if not isinstance(c, ModelCheckpoint)] + \
        [c for c in callbacks if isinstance(c, ModelCheckpoint)]
