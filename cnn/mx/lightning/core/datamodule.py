"""Mirror of lightning.pytorch.core.datamodule: ``LightningDataModule``, a data set's loaders and hooks in one
object the Trainer calls."""

from __future__ import annotations

from typing import Any, Optional

from cnn.mx.lightning.core.hooks import DataHooks
from cnn.mx.lightning.core.mixins.hparams_mixin import HyperparametersMixin

LOADER_HOOKS = ("train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader")


class LightningDataModule(DataHooks, HyperparametersMixin):
    """Lightning's ``LightningDataModule``: override ``prepare_data`` (once, on rank zero: downloads),
    ``setup(stage)`` (every rank: splits, transforms) and the ``*_dataloader()`` methods that apply; optionally
    ``teardown(stage)``, ``state_dict``/``load_state_dict`` (kept in checkpoints under the class's qualified name)
    , ``save_hyperparameters`` and the batch-transfer hooks (``DataHooks``: called instead of the module's when
    overridden here). The trainer sets ``self.trainer`` before ``setup``.

    A loader is anything with ``len()`` that iterates batches: a list of batches, a torch ``DataLoader``, or a
    loader of your own. A batch is an ``mx.array``, a numpy array or a torch tensor, or a tuple, list or dict of
    them; the trainer turns numpy arrays and torch tensors into ``mx.array`` once per batch before the step sees
    it. A ``*_dataloader`` left as the base one means the stage has no data (validation is skipped, ``test``
    refuses), as Lightning's ``is_overridden`` check does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trainer: Optional[Any] = None

    def prepare_data(self) -> None: ...
    def setup(self, stage: str) -> None: ...
    def teardown(self, stage: str) -> None: ...

    def train_dataloader(self) -> Any:
        raise NotImplementedError("`train_dataloader` must be implemented to be used with the Trainer")

    def val_dataloader(self) -> Any:
        raise NotImplementedError("`val_dataloader` must be implemented to be used with the Trainer")

    def test_dataloader(self) -> Any:
        raise NotImplementedError("`test_dataloader` must be implemented to be used with the Trainer")

    def predict_dataloader(self) -> Any:
        raise NotImplementedError("`predict_dataloader` must be implemented to be used with the Trainer")

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


def loader_hook(datamodule: Any, name: str) -> Any:
    """``datamodule.<name>`` (a ``*_dataloader`` method), or ``None`` when it has none or only the
    ``LightningDataModule`` base's."""
    method = getattr(datamodule, name, None)
    if method is None or getattr(type(datamodule), name, None) is getattr(LightningDataModule, name):
        return None
    return method
