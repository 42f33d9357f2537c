"""Callbacks the MLX side's ``fit`` gets by default, beside what its trainer does natively (as ``cnn.pt.callbacks``).

``MonitorCheck`` ends ``fit`` in one line when a callback's ``monitor`` names a metric the model does not log
(``cnn.monitors``), at the first validation instead of after an epoch; ``ModelCheckpoint`` writes ``last`` on the
way out when steps were trained since its last checkpoint.
"""

from __future__ import annotations

from cnn.mx.lightning.callbacks.callback import Callback

from cnn.errors import MonitorError
from cnn.monitors import unknown_monitor_line


class MonitorCheck(Callback):
    """Hook: ``on_validation_end`` of ``fit``'s first validation (the sanity check's when there is one) raises
    ``MonitorError`` for a ``monitor`` of another callback that names no metric the model logs."""

    def __init__(self) -> None:
        self.checked = False

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.checked or trainer.state.fn != "fit":
            return
        self.checked = True
        line = unknown_monitor_line(trainer.callbacks, trainer.callback_metrics, trainer.global_step)
        if line:
            raise MonitorError(line)
