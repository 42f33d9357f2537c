"""Old path of the mirror of lightning.pytorch.loggers.csv_logs.

The classes' home moved when the mirror took Lightning's source layout; this path stays so that configs and
saved ``config.yaml`` files that name it still run.
"""

from cnn.mx.lightning.loggers.csv_logs import CSVLogger

__all__ = ["CSVLogger"]
