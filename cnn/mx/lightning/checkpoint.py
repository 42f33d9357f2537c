"""Old path of the mirror of lightning.fabric.plugins.io.torch_io (the checkpoint IO a config's trainer.plugins names).

The classes' home moved when the mirror took Lightning's source layout; this path stays so that configs and
saved ``config.yaml`` files that name it still run.
"""

from cnn.mx.lightning.plugins.io.safetensors_io import SafetensorsCheckpointIO

__all__ = ["SafetensorsCheckpointIO"]
