"""Callbacks the MLX side's ``fit`` gets by default, beside what its trainer does natively (as ``cnn.pt.callbacks``).

``MonitorCheck`` ends ``fit`` in one line when a callback's ``monitor`` names a metric the model does not log
(``cnn.monitors``), at the first validation instead of after an epoch; ``ModelCheckpoint`` writes ``last`` on the
way out when steps were trained since its last checkpoint.
"""

from __future__ import annotations

from cnn.mx.lightning.callbacks.callback import Callback

from cnn.monitors import FirstValidationMonitorCheck


class MonitorCheck(FirstValidationMonitorCheck, Callback):
    """Hook: ``on_validation_end`` of ``fit``'s first validation (the sanity check's when there is one) raises
    ``MonitorError`` for a ``monitor`` of another callback that names no metric the model logs
    (``cnn.monitors.FirstValidationMonitorCheck``)."""
