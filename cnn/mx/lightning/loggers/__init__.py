"""Mirror of lightning.pytorch.loggers: TensorBoard, CSV, MLflow and W&B loggers and their base, ``Logger``."""

from cnn.mx.lightning.loggers.csv_logs import CSVLogger
from cnn.mx.lightning.loggers.logger import DummyLogger, Logger, VersionedLogger
from cnn.mx.lightning.loggers.mlflow import MLFlowLogger
from cnn.mx.lightning.loggers.tensorboard import TensorBoardLogger
from cnn.mx.lightning.loggers.wandb import WandbLogger

__all__ = ["CSVLogger", "DummyLogger", "Logger", "MLFlowLogger", "TensorBoardLogger", "VersionedLogger", "WandbLogger"]
