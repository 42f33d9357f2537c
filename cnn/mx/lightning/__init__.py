"""Mirror of lightning.pytorch: the Lightning training loop for MLX (``Trainer``, ``LightningModule``, ...).

Laid out as Lightning's own sources (``trainer/``, ``loops/``, ``strategies/``, ``callbacks/``, ``loggers/``,
``core/``, ``plugins/``, ``profilers/``), each file naming its Lightning counterpart in its first line. Knows
nothing of the model it trains: it imports only mlx, numpy, the standard library, tensorboard, yaml, tqdm (rich,
optionally, for ``RichProgressBar``) and the project's ``cnn.atomic``, ``cnn.errors`` and ``cnn.runs``. Being
under ``cnn.mx`` it is imported after ``cnn.mx`` has given MLX its BLAS.
"""

from cnn.mx.lightning.callbacks import (
    Callback,
    DeviceStatsMonitor,
    EarlyStopping,
    GradientAccumulationScheduler,
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    RichProgressBar,
    StochasticWeightAveraging,
    Timer,
    TQDMProgressBar,
)
from cnn.mx.lightning.core import LightningDataModule, LightningModule
from cnn.mx.lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
from cnn.mx.lightning.plugins.io import SafetensorsCheckpointIO
from cnn.mx.lightning.trainer import Trainer

__all__ = ["CSVLogger", "Callback", "DeviceStatsMonitor", "EarlyStopping", "GradientAccumulationScheduler",
           "LearningRateMonitor", "LightningDataModule", "LightningModule", "MLFlowLogger", "ModelCheckpoint",
           "ModelSummary", "RichProgressBar", "SafetensorsCheckpointIO", "StochasticWeightAveraging", "TQDMProgressBar",
           "TensorBoardLogger", "Timer", "Trainer", "WandbLogger"]
