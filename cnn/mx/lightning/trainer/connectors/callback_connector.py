"""Mirror of lightning.pytorch.trainer.connectors.callback_connector: the trainer's callbacks and their order."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.callbacks.model_checkpoint import ModelCheckpoint
from cnn.mx.lightning.callbacks.model_summary import ModelSummary
from cnn.mx.lightning.callbacks.progress.tqdm_progress import TQDMProgressBar
from cnn.mx.lightning.callbacks.timer import Timer
from cnn.mx.lightning.trainer.call import call_lightning_module_hook


def reorder_callbacks(callbacks: list[Callback]) -> list[Callback]:
    """Checkpoint callbacks last, preserving relative order (Lightning's ``_reorder_callbacks``)."""
    return [c for c in callbacks if not isinstance(c, ModelCheckpoint)] + \
        [c for c in callbacks if isinstance(c, ModelCheckpoint)]


def on_trainer_init(trainer: Any, callbacks: Optional[Union[list[Callback], Callback]],
                    enable_checkpointing: Optional[bool], enable_progress_bar: Optional[bool],
                    default_root_dir: Optional[str], enable_model_summary: Optional[bool], max_time: Any) -> None:
    """Lightning's ``on_trainer_init``: ``trainer.default_root_dir`` (default: cwd) and ``trainer.callbacks``, the
    given callbacks plus the defaults the flags ask for (a ``Timer`` for ``max_time``, ``ModelCheckpoint``,
    ``TQDMProgressBar``, ``ModelSummary``) unless one is given, reordered."""
    trainer.default_root_dir = os.fspath(default_root_dir) if default_root_dir else os.getcwd()
    cbs = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
    if max_time is not None and not any(isinstance(c, Timer) for c in cbs):
        cbs.append(Timer(duration=max_time, interval="step"))
    if any(isinstance(c, ModelCheckpoint) for c in cbs) and enable_checkpointing is False:
        raise ValueError("Trainer(enable_checkpointing=False) but a ModelCheckpoint was passed in callbacks")
    if enable_checkpointing is not False and not any(isinstance(c, ModelCheckpoint) for c in cbs):
        cbs.append(ModelCheckpoint())
    if enable_progress_bar is not False and not any(isinstance(c, TQDMProgressBar) for c in cbs):
        cbs.append(TQDMProgressBar())
    if enable_model_summary is not False and not any(isinstance(c, ModelSummary) for c in cbs):
        cbs.append(ModelSummary())
    trainer.callbacks = reorder_callbacks(cbs)


def attach_model_callbacks(trainer: Any, model: Any) -> None:
    """Lightning's ``_attach_model_callbacks``: the module's ``configure_callbacks()`` replace the trainer's of the
    same type; then every callback logs through the module (``self.log`` in a callback)."""
    extra = call_lightning_module_hook(trainer, "configure_callbacks")
    if extra:
        extra = [extra] if isinstance(extra, Callback) else list(extra)
        types = {type(c) for c in extra}
        trainer.callbacks = reorder_callbacks([c for c in trainer.callbacks if type(c) not in types] + extra)
    for cb in trainer.callbacks:
        cb.log, cb.log_dict = model.log, model.log_dict
