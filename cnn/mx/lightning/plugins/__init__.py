"""Mirror of lightning.pytorch.plugins: precision and checkpoint IO."""

from cnn.mx.lightning.plugins.io import SafetensorsCheckpointIO
from cnn.mx.lightning.plugins.precision import Precision

__all__ = ["Precision", "SafetensorsCheckpointIO"]
