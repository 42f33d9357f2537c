"""Mirror of lightning.pytorch.callbacks: one callback a file, all importable from here."""

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.callbacks.device_stats_monitor import DeviceStatsMonitor
from cnn.mx.lightning.callbacks.early_stopping import EarlyStopping
from cnn.mx.lightning.callbacks.gradient_accumulation_scheduler import GradientAccumulationScheduler
from cnn.mx.lightning.callbacks.lr_monitor import LearningRateMonitor
from cnn.mx.lightning.callbacks.model_checkpoint import ModelCheckpoint
from cnn.mx.lightning.callbacks.model_summary import ModelSummary
from cnn.mx.lightning.callbacks.progress import RichProgressBar, TQDMProgressBar
from cnn.mx.lightning.callbacks.stochastic_weight_avg import StochasticWeightAveraging
from cnn.mx.lightning.callbacks.timer import Timer

__all__ = ["Callback", "DeviceStatsMonitor", "EarlyStopping", "GradientAccumulationScheduler", "LearningRateMonitor",
           "ModelCheckpoint", "ModelSummary", "RichProgressBar", "StochasticWeightAveraging", "TQDMProgressBar",
           "Timer"]
