"""Mirror of lightning.pytorch.callbacks.progress: the progress bars."""

from cnn.mx.lightning.callbacks.progress.rich_progress import RichProgressBar
from cnn.mx.lightning.callbacks.progress.tqdm_progress import TQDMProgressBar

__all__ = ["RichProgressBar", "TQDMProgressBar"]
