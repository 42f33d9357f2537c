"""Lightning's idioms for plain attributes on a module, on the MLX mirror: a list of epoch-end outputs
(``self.training_step_outputs = []`` then ``.append(loss)``), a config dict, an array kept from a step. MLX's
``nn.Module`` would take each for parameters; the mirror keeps them out of the parameter tree, so training, the
optimizer, checkpoints and ``mx.compile`` see only the real parameters (issue 31 item 2)."""

from __future__ import annotations

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning.callbacks import ModelCheckpoint
from cnn.mx.lightning.core.module import LightningModule
from cnn.mx.lightning.trainer import Trainer

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

PARAMETERS = ["layer.bias", "layer.weight"]


class Collecting(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)
        self.training_step_outputs = []
        self.config = {"lr": 0.1, "name": "toy"}

    def forward(self, x: mx.array) -> mx.array:
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        loss = nn.losses.mse_loss(self(batch), mx.zeros((batch.shape[0], 1)))
        self.training_step_outputs.append(loss)
        self.last_loss = loss  # an array first assigned in a step: state, as a tensor attribute is in torch
        return loss

    def on_train_epoch_end(self) -> None:
        # compiled, the step's python (the append) runs once, at its trace: later epochs have nothing to stack
        if self.training_step_outputs:
            self.epoch_mean = mx.stack(self.training_step_outputs).mean()
        self.training_step_outputs.clear()

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.config["lr"])


class _Loader:
    """Four batches of two rows, re-iterable (a plain list would be taken as several loaders)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.batches = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(4)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


@pytest.mark.parametrize("compile", [False, True])
def test_list_dict_and_step_arrays_on_the_module_never_join_its_parameters(tmp_path, compile):
    model = Collecting()
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = Trainer(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, callbacks=[checkpoint], compile=compile, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=_Loader())

    assert sorted(k for k, _ in tree_flatten(model.trainable_parameters())) == PARAMETERS
    assert sorted(k for k, _ in tree_flatten(model.parameters())) == PARAMETERS
    assert model.training_step_outputs == []  # cleared at the epoch's end, still a plain list
    assert isinstance(model.epoch_mean, mx.array) and isinstance(model.last_loss, mx.array)
    assert trainer.global_step == 8
    saved = mx.load(checkpoint.last_model_path)
    weights = sorted(k for k in saved if k.endswith(("layer.weight", "layer.bias")))
    assert len(weights) == 2
    assert not [k for k in saved if any(name in k for name in ("training_step_outputs", "last_loss",
                                                                "epoch_mean", "config"))]


def test_a_container_holding_modules_or_arrays_stays_a_parameter_sub_tree():
    model = Collecting()
    model.blocks = [nn.Linear(2, 2)]
    model.scales = {"a": mx.ones(2)}
    names = {k for k, _ in tree_flatten(model.trainable_parameters())}
    assert {"blocks.0.weight", "blocks.0.bias", "scales.a"} <= names
