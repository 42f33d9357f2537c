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
from unittest import mock

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
from mlx.utils import tree_flatten
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


class DummyDataset(torch.utils.data.Dataset):
    """Lightning's ``tests_pytorch.helpers.deterministic_model.DummyDataset``: 12 rows of ``[0.5, 1.0, 2.0]``."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, idx: int) -> torch.Tensor:
        return torch.tensor([0.5, 1.0, 2.0])


def _deterministic_model(base: Any, linear: Any, tensor: Any, adam: Any) -> type:
    """Lightning's ``tests_pytorch.helpers.deterministic_model.DeterministicModel`` on ``base``: one bias-free
    layer whose weights make every row's outputs 15 and 42, so ``step`` is ``57 * batch_size`` (171 for 3)."""

    class DeterministicModel(base):
        def __init__(self, weights: Any = None) -> None:
            super().__init__()
            self.training_step_called = False
            self.validation_step_called = False
            self.assert_backward = True
            self.l1 = linear(2, 3, bias=False)
            if weights is None:
                weights = tensor([[4, 3, 5], [10, 11, 13]])
                self.l1.weight = weights if not isinstance(weights, torch.Tensor) else torch.nn.Parameter(weights)

        def forward(self, x: Any) -> Any:
            return self.l1(x)

        def step(self, batch: Any, batch_idx: int) -> Any:
            x = batch
            bs = x.shape[0]
            y_hat = self.l1(x)
            test_hat = np.array(y_hat.detach().cpu() if isinstance(y_hat, torch.Tensor) else y_hat)
            assert np.all(test_hat[:, 0] == 15.0)
            assert np.all(test_hat[:, 1] == 42.0)
            out = y_hat.sum()
            assert out.item() == (42.0 * bs) + (15.0 * bs)
            return out

        def count_num_graphs(self, result: dict, num_graphs: int = 0) -> int:
            for v in result.values():
                if isinstance(v, torch.Tensor) and v.grad_fn is not None:
                    num_graphs += 1
                if isinstance(v, dict):
                    num_graphs += self.count_num_graphs(v)
            return num_graphs

        def train_dataloader(self) -> DataLoader:
            return DataLoader(DummyDataset(), batch_size=3, shuffle=False)

        def val_dataloader(self) -> DataLoader:
            return DataLoader(DummyDataset(), batch_size=3, shuffle=False)

        def configure_optimizers(self) -> Any:
            return adam(self, lr=0)

    return DeterministicModel


def _common() -> dict[str, Any]:
    """Names that are the same object on both sides: torch's data pipeline and Lightning's random datasets."""
    return dict(DataLoader=DataLoader, Subset=Subset, RandomDataset=RandomDataset,
                RandomIterableDataset=RandomIterableDataset,
                RandomIterableDatasetWithLen=RandomIterableDatasetWithLen, np=np)


def _mirror_misconfiguration() -> type:
    from cnn.mx.lightning.utilities.exceptions import MisconfigurationException

    return MisconfigurationException


def _mirror_checkpoint_io() -> Any:
    return mirror.SafetensorsCheckpointIO()


def _mlx_flatten(tree: Any) -> list:
    from mlx.utils import tree_flatten

    return tree_flatten(tree)


def _mirror_hparams() -> dict[str, Any]:
    from cnn.mx.lightning.core.mixins.hparams_mixin import AttributeDict, HyperparametersMixin
    from cnn.mx.lightning.core.saving import load_hparams_from_yaml, save_hparams_to_yaml

    return dict(HyperparametersMixin=HyperparametersMixin, AttributeDict=AttributeDict,
                save_hparams_to_yaml=save_hparams_to_yaml, load_hparams_from_yaml=load_hparams_from_yaml)


def _lightning_hparams() -> dict[str, Any]:
    from lightning.pytorch.core.mixins import HyperparametersMixin
    from lightning.pytorch.core.saving import load_hparams_from_yaml, save_hparams_to_yaml
    from lightning.pytorch.utilities import AttributeDict

    return dict(HyperparametersMixin=HyperparametersMixin, AttributeDict=AttributeDict,
                save_hparams_to_yaml=save_hparams_to_yaml, load_hparams_from_yaml=load_hparams_from_yaml)


def _lightning_misconfiguration() -> type:
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    return MisconfigurationException


def _mirror() -> types.SimpleNamespace:
    import cnn.mx.lightning.callbacks as callbacks
    import cnn.mx.lightning.loggers as loggers

    return types.SimpleNamespace(
        name="mirror", module=mirror, callbacks=callbacks, loggers=loggers,
        Trainer=mirror.Trainer, LightningModule=mirror.LightningModule,
        LightningDataModule=mirror.LightningDataModule, Callback=mirror.Callback,
        seed_everything=mirror.seed_everything,
        BoringModel=MirrorBoringModel, BoringDataModule=MirrorBoringDataModule,
        nn=mnn, mse_loss=mnn.losses.mse_loss,
        sgd=lambda module, lr=0.1, **kw: moptim.SGD(learning_rate=lr, **kw),
        adam=lambda module, lr=0.1, **kw: moptim.Adam(learning_rate=lr, **kw),
        step_lr=lambda optimizer, step_size=1, gamma=0.1: step_lr(float(optimizer.learning_rate), step_size, gamma),
        tensor=lambda value, dtype=None: mx.array(value, dtype=dtype) if dtype is not None else mx.array(value),
        to_numpy=lambda value: np.array(value),
        checkpoint_suffix=".safetensors",
        MisconfigurationException=_mirror_exceptions().MisconfigurationException,
        TrainerState=_mirror_states().TrainerState,
        DummyLogger=loggers.logger.DummyLogger,
        params=lambda module: {k: np.array(v) for k, v in tree_flatten(module.parameters())},
        lr_of=lambda optimizer: float(optimizer.learning_rate),
        DeterministicModel=_deterministic_model(mirror.LightningModule, mnn.Linear,
                                                lambda v: mx.array(v, dtype=mx.float32),
                                                lambda module, lr: moptim.Adam(learning_rate=lr)),
        Closure=mirror.loops.optimization.automatic.Closure,
        RunningStage=mirror.trainer.states.RunningStage,
        Tensor=mx.array,
        is_overridden=mirror.utilities.model_helpers.is_overridden,
        load_checkpoint=lambda path: _mirror_checkpoint_io().load_checkpoint(path),
        weights=lambda module: [np.array(v) for _, v in _mlx_flatten(module.parameters())],
        stack=mx.stack,
        **_mirror_hparams(),
        patch_checkpoint_write=lambda: mock.patch.object(mirror.SafetensorsCheckpointIO, "save_checkpoint"),
        save_checkpoint=lambda checkpoint, path: _mirror_checkpoint_io().save_checkpoint(checkpoint, path),
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
        MisconfigurationException=_lightning_exceptions().MisconfigurationException,
        TrainerState=_lightning_states().TrainerState,
        DummyLogger=loggers.logger.DummyLogger,
        params=lambda module: {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()},
        lr_of=lambda optimizer: optimizer.param_groups[0]["lr"],
        DeterministicModel=_deterministic_model(lightning.LightningModule, torch.nn.Linear,
                                                lambda v: torch.tensor(v).float(),
                                                lambda module, lr: torch.optim.Adam(module.parameters(), lr=lr)),
        Closure=lightning.loops.optimization.automatic.Closure,
        RunningStage=lightning.trainer.states.RunningStage,
        Tensor=torch.Tensor,
        is_overridden=lightning.utilities.model_helpers.is_overridden,
        load_checkpoint=lambda path: torch.load(path, weights_only=True),
        weights=lambda module: [p.detach().cpu().numpy() for p in module.parameters()],
        stack=torch.stack,
        **_lightning_hparams(),
        patch_checkpoint_write=lambda: mock.patch("torch.save"),
        save_checkpoint=lambda checkpoint, path: torch.save(checkpoint, path),
        **_common())


def _mirror_exceptions() -> types.ModuleType:
    import cnn.mx.lightning.utilities.exceptions as exceptions

    return exceptions


def _mirror_states() -> types.ModuleType:
    import cnn.mx.lightning.trainer.states as states

    return states


def _lightning_exceptions() -> types.ModuleType:
    import lightning.pytorch.utilities.exceptions as exceptions

    return exceptions


def _lightning_states() -> types.ModuleType:
    import lightning.pytorch.trainer.states as states

    return states


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
