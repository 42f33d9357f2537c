"""The two frameworks a ported Lightning test runs on, behind one set of names.

Each test under ``tests/lightning/`` is one of Lightning's own (``tests/tests_pytorch/...``, named in its
docstring), kept scenario for scenario and assertion for assertion; only the framework is translated. It takes the
``pl`` fixture, one of the two namespaces below, and reads every framework name from it: ``pl.Trainer``,
``pl.BoringModel``, ``pl.callbacks.ModelCheckpoint``, ``pl.nn.Linear``, ``pl.mse_loss``, ``pl.sgd(module, lr)``...
So each case runs twice: on ``cnn.mx.lightning`` (the mirror, "mirror") and on Lightning itself ("lightning"),
which proves the ported scenario and its assertions are Lightning's.

Lightning's ``BoringModel`` (``lightning.pytorch.demos.boring_classes``) is mirrored exactly: ``Linear(32, 2)``,
the mean squared error to ones, ``{"loss": ...}``/``{"x": ...}``/``{"y": ...}`` from the steps, SGD at lr 0.1
with a per-epoch StepLR(step_size=1, gamma=0.1), and 64 random rows of 32 features for every stage, one row a
batch, through torch's ``DataLoader`` on both sides (the mirror turns torch tensors into ``mx.array``).
"""

from __future__ import annotations

import types
from typing import Any, Optional

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
import cnn.mx.lightning as mirror

import lightning.pytorch as lightning
import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as moptim
import numpy as np
import torch
from lightning.pytorch.demos.boring_classes import (
    BoringDataModule as TorchBoringDataModule,
)
from lightning.pytorch.demos.boring_classes import (
    BoringModel as TorchBoringModel,
)
from lightning.pytorch.demos.boring_classes import (
    RandomDataset,
    RandomIterableDataset,
    RandomIterableDatasetWithLen,
)
from torch.utils.data import DataLoader, Subset


def step_lr(base_lr: float, step_size: int = 1, gamma: float = 0.1):
    """torch's ``StepLR`` as the mirror's scheduler: the rate after ``n`` scheduler steps."""
    return lambda n: base_lr * gamma ** (n // step_size)


class MirrorBoringModel(mirror.LightningModule):
    """Lightning's ``BoringModel`` on the mirror, line for line."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = mnn.Linear(32, 2)

    def forward(self, x: mx.array) -> mx.array:
        return self.layer(x)

    def loss(self, preds: mx.array, labels: Optional[mx.array] = None) -> mx.array:
        if labels is None:
            labels = mx.ones_like(preds)
        return mnn.losses.mse_loss(preds, labels)

    def step(self, batch: Any) -> mx.array:
        output = self(batch)
        return self.loss(output)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        return {"loss": self.step(batch)}

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        return {"x": self.step(batch)}

    def test_step(self, batch: Any, batch_idx: int) -> Any:
        return {"y": self.step(batch)}

    def configure_optimizers(self) -> Any:
        optimizer = moptim.SGD(learning_rate=0.1)
        return [optimizer], [step_lr(0.1)]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RandomDataset(32, 64))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(RandomDataset(32, 64))

    def test_dataloader(self) -> DataLoader:
        return DataLoader(RandomDataset(32, 64))

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(RandomDataset(32, 64))


class MirrorBoringDataModule(mirror.LightningDataModule):
    """Lightning's ``BoringDataModule`` on the mirror: 64 rows for each stage out of one random table."""

    def __init__(self) -> None:
        super().__init__()
        self.random_full = RandomDataset(32, 64 * 4)

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.random_train = Subset(self.random_full, indices=range(64))
        if stage in ("fit", "validate"):
            self.random_val = Subset(self.random_full, indices=range(64, 64 * 2))
        if stage == "test":
            self.random_test = Subset(self.random_full, indices=range(64 * 2, 64 * 3))
        if stage == "predict":
            self.random_predict = Subset(self.random_full, indices=range(64 * 3, 64 * 4))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.random_train)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.random_val)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.random_test)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.random_predict)


def _common() -> dict[str, Any]:
    """Names that are the same object on both sides: torch's data pipeline and Lightning's random datasets."""
    return dict(DataLoader=DataLoader, Subset=Subset, RandomDataset=RandomDataset,
                RandomIterableDataset=RandomIterableDataset,
                RandomIterableDatasetWithLen=RandomIterableDatasetWithLen, np=np)


def _mirror() -> types.SimpleNamespace:
    import cnn.mx.lightning.callbacks as callbacks
    import cnn.mx.lightning.loggers as loggers

    return types.SimpleNamespace(
        name="mirror", module=mirror, callbacks=callbacks, loggers=loggers,
        Trainer=mirror.Trainer, LightningModule=mirror.LightningModule,
        LightningDataModule=mirror.LightningDataModule, Callback=mirror.Callback,
        seed_everything=getattr(mirror, "seed_everything", None),
        BoringModel=MirrorBoringModel, BoringDataModule=MirrorBoringDataModule,
        nn=mnn, mse_loss=mnn.losses.mse_loss,
        sgd=lambda module, lr=0.1, **kw: moptim.SGD(learning_rate=lr, **kw),
        adam=lambda module, lr=0.1, **kw: moptim.Adam(learning_rate=lr, **kw),
        step_lr=lambda optimizer, step_size=1, gamma=0.1: step_lr(float(optimizer.learning_rate), step_size, gamma),
        tensor=lambda value, dtype=None: mx.array(value, dtype=dtype) if dtype is not None else mx.array(value),
        to_numpy=lambda value: np.array(value),
        checkpoint_suffix=".safetensors",
        **_common())


def _lightning() -> types.SimpleNamespace:
    import lightning.pytorch.callbacks as callbacks
    import lightning.pytorch.loggers as loggers

    return types.SimpleNamespace(
        name="lightning", module=lightning, callbacks=callbacks, loggers=loggers,
        Trainer=lightning.Trainer, LightningModule=lightning.LightningModule,
        LightningDataModule=lightning.LightningDataModule, Callback=lightning.Callback,
        seed_everything=lightning.seed_everything,
        BoringModel=TorchBoringModel, BoringDataModule=TorchBoringDataModule,
        nn=torch.nn, mse_loss=torch.nn.functional.mse_loss,
        sgd=lambda module, lr=0.1, **kw: torch.optim.SGD(module.parameters(), lr=lr, **kw),
        adam=lambda module, lr=0.1, **kw: torch.optim.Adam(module.parameters(), lr=lr, **kw),
        step_lr=lambda optimizer, step_size=1, gamma=0.1: torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma),
        tensor=lambda value, dtype=None: torch.tensor(value, dtype=dtype),
        to_numpy=lambda value: value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.array(value),
        checkpoint_suffix=".ckpt",
        **_common())


FRAMEWORKS = {"mirror": _mirror, "lightning": _lightning}



def _with_logging_names(make: Any, exceptions_module: str, tensor_type: type) -> Any:
    """``make``'s namespace with what the logging tests (trainer/logging_, loggers/, callbacks/test_lr_monitor.py)
    read too: ``Tensor`` (the framework's array type) and ``MisconfigurationException``."""

    def build() -> types.SimpleNamespace:
        import importlib

        namespace = make()
        namespace.Tensor = tensor_type
        namespace.MisconfigurationException = importlib.import_module(exceptions_module).MisconfigurationException
        return namespace

    return build


FRAMEWORKS["mirror"] = _with_logging_names(FRAMEWORKS["mirror"], "cnn.mx.lightning.utilities.exceptions", mx.array)
FRAMEWORKS["lightning"] = _with_logging_names(FRAMEWORKS["lightning"], "lightning.pytorch.utilities.exceptions",
                                              torch.Tensor)
