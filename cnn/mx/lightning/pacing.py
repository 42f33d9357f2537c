"""Old path of the mirrors of lightning.pytorch.callbacks.timer and gradient_accumulation_scheduler.

The classes' home moved when the mirror took Lightning's source layout; this path stays so that configs and
saved ``config.yaml`` files that name it still run.
"""

from cnn.mx.lightning.callbacks.gradient_accumulation_scheduler import GradientAccumulationScheduler
from cnn.mx.lightning.callbacks.timer import Timer

__all__ = ["GradientAccumulationScheduler", "Timer"]
