"""The suite's one toy model and data, per framework, after Lightning's ``BoringModel``
(``lightning.pytorch.demos.boring_classes``): a linear regression of 3 features, with a step for
every stage, on in-memory batches, and a DataModule of such batches. Tests of a trainer's contract
(hook order, logging, resume, the generic trainer, a user's classes named on the command line)
subclass or name these instead of writing their own."""

from __future__ import annotations

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning import LightningDataModule as MlxLightningDataModule
from cnn.mx.lightning import LightningModule as MlxLightningModule

import lightning.pytorch as pl
import mlx.nn as mnn
import mlx.optimizers as moptim
import numpy as np
import torch


def regression_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of 3 normal features and the target ``x @ [1, -2, 0.5] + 0.1`` (float32)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.1).astype(np.float32)
    return x, y


class Loader:
    """In-memory (features, targets) batches, re-iterable, with a length. Shuffled, the order depends
    only on (seed, epoch) through ``set_epoch``, as with torch's DistributedSampler; ``convert``
    turns each array into the framework's own (``torch.from_numpy``), numpy's by default."""

    def __init__(self, x, y, batch_size, shuffle=False, seed=0, convert=None):
        self.x, self.y, self.batch_size, self.shuffle, self.seed, self.epoch = x, y, batch_size, shuffle, seed, 0
        self.convert = convert or (lambda array: array)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x)) if self.shuffle \
            else np.arange(len(self.x))
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.convert(self.x[idx]), self.convert(self.y[idx])


def boring_batches(n_batches: int, seed: int, convert=None) -> Loader:
    """``n_batches`` of 4 rows of ``regression_data``, in a fixed order."""
    return Loader(*regression_data(4 * n_batches, seed), 4, convert=convert)


class MlxBoringModel(MlxLightningModule):
    """``Linear(3, 1)`` on the MLX mirror: mean squared error logged as ``train_loss``,
    ``val_loss``, ``test_loss``; predictions are the layer's output; SGD at lr 0.1."""

    def __init__(self):
        super().__init__()
        self.layer = mnn.Linear(3, 1)

    def loss(self, batch):
        x, y = batch
        return ((self.layer(x) - y) ** 2).mean()

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self.loss(batch))

    def predict_step(self, batch, batch_idx):
        return self.layer(batch[0])

    def configure_optimizers(self):
        return moptim.SGD(learning_rate=0.1)


class TorchBoringModel(pl.LightningModule):
    """``MlxBoringModel`` in torch through Lightning: the same layer, logs, predictions and SGD."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def loss(self, batch):
        x, y = batch
        return ((self.layer(x) - y) ** 2).mean()

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self.loss(batch))

    def predict_step(self, batch, batch_idx):
        return self.layer(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class MlxBoringData(MlxLightningDataModule):
    """``boring_batches`` on the MLX mirror: 4 training batches, 2 for each other stage (numpy arrays,
    which the trainer turns into ``mx.array``)."""

    def train_dataloader(self):
        return boring_batches(4, seed=0)

    def val_dataloader(self):
        return boring_batches(2, seed=1)

    def test_dataloader(self):
        return boring_batches(2, seed=2)

    def predict_dataloader(self):
        return boring_batches(2, seed=3)


class TorchBoringData(pl.LightningDataModule):
    """``MlxBoringData`` as a Lightning DataModule of torch tensors."""

    def train_dataloader(self):
        return boring_batches(4, seed=0, convert=torch.from_numpy)

    def val_dataloader(self):
        return boring_batches(2, seed=1, convert=torch.from_numpy)

    def test_dataloader(self):
        return boring_batches(2, seed=2, convert=torch.from_numpy)

    def predict_dataloader(self):
        return boring_batches(2, seed=3, convert=torch.from_numpy)
