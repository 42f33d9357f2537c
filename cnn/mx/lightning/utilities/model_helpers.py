"""Mirror of lightning.pytorch.utilities.model_helpers: ``is_overridden``, where Lightning users import it from.

The function lives beside ``LightningModule`` (:mod:`cnn.mx.lightning.core.module`), whose default parent it is;
this module is the import path Lightning's code and users use.
"""

from cnn.mx.lightning.core.module import is_overridden

__all__ = ["is_overridden"]
