"""Mirror of lightning.pytorch.plugins.precision."""

from cnn.mx.lightning.plugins.precision.amp import LossScaler
from cnn.mx.lightning.plugins.precision.precision import SUPPORTED, Precision

__all__ = ["SUPPORTED", "LossScaler", "Precision"]
