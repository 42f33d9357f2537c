"""Old path of the mirror of lightning.pytorch.callbacks.progress.rich_progress.

The classes' home moved when the mirror took Lightning's source layout; this path stays so that configs and
saved ``config.yaml`` files that name it still run.
"""

from cnn.mx.lightning.callbacks.progress.rich_progress import RichProgressBar

__all__ = ["RichProgressBar"]
