"""Mirror of lightning.pytorch.strategies: one process (``SingleDeviceStrategy``) or data parallel over the
processes ``mlx.launch`` started (``DDPStrategy``)."""

from cnn.mx.lightning.strategies.ddp import DDPStrategy
from cnn.mx.lightning.strategies.single_device import SingleDeviceStrategy
from cnn.mx.lightning.strategies.strategy import Strategy

__all__ = ["DDPStrategy", "SingleDeviceStrategy", "Strategy"]
