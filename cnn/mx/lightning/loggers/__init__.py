"""Mirror of lightning.pytorch.loggers: the TensorBoard and CSV loggers and their base."""

from cnn.mx.lightning.loggers.csv_logs import CSVLogger
from cnn.mx.lightning.loggers.logger import DummyLogger, VersionedLogger
from cnn.mx.lightning.loggers.tensorboard import TensorBoardLogger

__all__ = ["CSVLogger", "DummyLogger", "TensorBoardLogger", "VersionedLogger"]
