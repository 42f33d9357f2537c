"""Callbacks the MLX side's ``fit`` gets by default, beside what its trainer does natively (as ``cnn.pt.callbacks``).

``MonitorCheck`` ends ``fit`` in one line when a callback's ``monitor`` names a metric the model does not log
(``cnn.monitors``), at the first validation instead of after an epoch. ``ModelCheckpoint`` is the mirror's
(Lightning's) with ``last`` refreshed after every epoch and validation, as ``cnn.pt.run_files.ModelCheckpoint`` does
on the torch side; the mirror's also writes ``last`` on the way out when steps were trained since its last
checkpoint.
"""

from __future__ import annotations

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.callbacks.model_checkpoint import ModelCheckpoint as LightningModelCheckpoint

from cnn.monitors import FirstValidationMonitorCheck
from cnn.runs import renew_last


class MonitorCheck(FirstValidationMonitorCheck, Callback):
    """Hook: ``on_validation_end`` of ``fit``'s first validation (the sanity check's when there is one) raises
    ``MonitorError`` for a ``monitor`` of another callback that names no metric the model logs
    (``cnn.monitors.FirstValidationMonitorCheck``)."""


class ModelCheckpoint(LightningModelCheckpoint):
    """The mirror's ``ModelCheckpoint``; with ``save_last``, ``last`` also holds the newest state after every epoch
    and validation that wrote no top-k checkpoint (Lightning refreshes it only together with one, so a crash after
    epochs that did not improve would resume from an older state), and renewed first when a resume starts from a
    newer checkpoint than it holds (``cnn.runs.renew_last``)."""

    def on_fit_start(self, trainer, pl_module) -> None:
        super().on_fit_start(trainer, pl_module)
        renew_last(self, trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def _refresh_last(self, trainer) -> None:
        # Skipped when this step was already saved (then `last` was written with it).
        # ``save_last="link"`` stays Lightning's: a link can only point at a top-k file.
        if self.save_last is True and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
