"""Lightning's training loop for MLX: ``Trainer``, ``LightningModule``, callbacks and loggers.

Knows nothing of the model it trains: it imports only mlx, numpy, the standard library,
tensorboard, yaml, tqdm (optionally rich for ``RichProgressBar``, mlflow for
``MLFlowLogger``, wandb for ``WandbLogger``, each imported only when used) and the project's
``cnn.atomic`` and ``cnn.errors``. Being under ``cnn.mx`` it is imported after ``cnn.mx`` has
given MLX its BLAS.
"""

from cnn.mx.lightning.callbacks import (
                                        Callback,
                                        EarlyStopping,
                                        LearningRateMonitor,
                                        ModelCheckpoint,
                                        ModelSummary,
                                        TQDMProgressBar,
)
from cnn.mx.lightning.checkpoint import SafetensorsCheckpointIO
from cnn.mx.lightning.csv_logs import CSVLogger
from cnn.mx.lightning.device_stats import DeviceStatsMonitor
from cnn.mx.lightning.loggers import TensorBoardLogger
from cnn.mx.lightning.mlflow_logger import MLFlowLogger
from cnn.mx.lightning.module import LightningModule
from cnn.mx.lightning.pacing import GradientAccumulationScheduler, Timer
from cnn.mx.lightning.rich_progress import RichProgressBar
from cnn.mx.lightning.swa import StochasticWeightAveraging
from cnn.mx.lightning.trainer import Trainer
from cnn.mx.lightning.wandb_logger import WandbLogger

__all__ = ["CSVLogger", "Callback", "DeviceStatsMonitor", "EarlyStopping", "GradientAccumulationScheduler",
           "LearningRateMonitor", "LightningModule", "MLFlowLogger", "ModelCheckpoint", "ModelSummary",
           "RichProgressBar", "SafetensorsCheckpointIO", "StochasticWeightAveraging", "TQDMProgressBar",
           "TensorBoardLogger", "Timer", "Trainer", "WandbLogger"]
