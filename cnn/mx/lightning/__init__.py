"""Mirror of lightning.pytorch: the Lightning training loop for MLX (``Trainer``, ``LightningModule``, ...).

Laid out as Lightning's own sources (``trainer/``, ``loops/``, ``strategies/``, ``callbacks/``, ``loggers/``,
``core/``, ``plugins/``, ``profilers/``), each file naming its Lightning counterpart in its first line. Knows
nothing of the model it trains: it imports only mlx, numpy, the standard library, tensorboard, yaml, tqdm (rich,
optionally, for ``RichProgressBar``) and the project's leaf modules ``cnn.atomic``, ``cnn.bounded_yaml``,
``cnn.errors``, ``cnn.interrupts``, ``cnn.runs`` and ``cnn.user_files``. Being under ``cnn.mx`` it is imported
after ``cnn.mx`` has given MLX its BLAS.
"""

import logging

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
from cnn.mx.lightning.utilities.seed import seed_everything

__all__ = ["CSVLogger", "Callback", "DeviceStatsMonitor", "EarlyStopping", "GradientAccumulationScheduler",
           "LearningRateMonitor", "LightningDataModule", "LightningModule", "MLFlowLogger", "ModelCheckpoint",
           "ModelSummary", "RichProgressBar", "SafetensorsCheckpointIO", "StochasticWeightAveraging", "TQDMProgressBar",
           "TensorBoardLogger", "Timer", "Trainer", "WandbLogger", "seed_everything"]

# Lightning's: the package's INFO messages (EarlyStopping's verbose decisions, seed_everything's seed) on stderr,
# unless the application has configured logging itself (then they propagate to its root handlers).
_logger = logging.getLogger(__name__)
_logger.setLevel(logging.INFO)
if not logging.getLogger().hasHandlers():
    _logger.addHandler(logging.StreamHandler())
    _logger.propagate = False
