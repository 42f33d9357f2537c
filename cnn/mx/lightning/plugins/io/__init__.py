"""Mirror of lightning.pytorch.plugins.io: checkpoint IO."""

from cnn.mx.lightning.plugins.io.safetensors_io import SafetensorsCheckpointIO

__all__ = ["SafetensorsCheckpointIO"]
