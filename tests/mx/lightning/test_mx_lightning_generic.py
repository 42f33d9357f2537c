"""``cnn.mx.lightning`` trains any MLX LightningModule: here a two-layer MLP on random data,
with nothing of this project's CNN imported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning import Callback, LightningModule, Trainer

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from tests.boring import Loader
from tests.cli_runs import ROOT

PACKAGE = Path(ROOT) / "cnn" / "mx" / "lightning"
# framework-free core (cnn.interrupts: what cnn.runs stops an evaluation with)
ALLOWED_CNN_MODULES = {"cnn.atomic", "cnn.bounded_yaml", "cnn.errors", "cnn.interrupts", "cnn.mx", "cnn.runs",
                       "cnn.user_files"}


class MLP(LightningModule):
    def __init__(self, features: int = 8, hidden: int = 32, classes: int = 2, lr: float = 0.3):
        super().__init__()
        self.save_hyperparameters()
        self.layers = [nn.Linear(features, hidden), nn.Linear(hidden, classes)]

    def __call__(self, x):
        return self.layers[1](nn.relu(self.layers[0](x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.losses.cross_entropy(self(x), y, reduction="mean")
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/acc", (self(x).argmax(axis=1) == y).astype(mx.float32).mean())

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.hparams.lr)


class LossHistory(Callback):
    def __init__(self):
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"].item()))


def separable_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = (x @ np.linspace(-1.0, 1.0, 8).astype(np.float32) > 0).astype(np.int32)
    return x, y


def test_a_two_layer_mlp_learns_separable_data_with_the_generic_trainer(tmp_path):
    mx.random.seed(0)
    history = LossHistory()
    trainer = Trainer(max_epochs=5, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                      num_sanity_val_steps=0, callbacks=[history], default_root_dir=str(tmp_path))
    trainer.fit(MLP(), train_dataloaders=Loader(*separable_data(512, seed=1), 32),
                val_dataloaders=Loader(*separable_data(256, seed=2), 64))
    assert len(history.losses) == 5 * 16 and trainer.global_step == 5 * 16
    first, last = np.mean(history.losses[:16]), np.mean(history.losses[-16:])
    assert last < 0.5 * first
    assert trainer.callback_metrics["val/acc"] > 0.9  # chance is 0.5


def test_the_package_source_imports_nothing_of_the_cnn():
    imported = set()
    sources = sorted(PACKAGE.rglob("*.py"))  # every file of the mirror, its subpackages included
    assert len(sources) > 5
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.split(".")[0] == "cnn"}
    assert ours and all(name in ALLOWED_CNN_MODULES or name.startswith("cnn.mx.lightning")
                        for name in ours), sorted(ours)


def test_importing_the_package_loads_no_module_of_the_cnn():
    probe = ("import sys, cnn.mx.lightning; "
             "print('\\n'.join(m for m in sys.modules if m.startswith('cnn.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=True).stdout.split()
    assert "cnn.mx.lightning.trainer" in loaded
    allowed_runtime = {"cnn.mx.allocator", "cnn.mx.blas"}  # cnn.mx's own set-up, run first
    assert [m for m in loaded if not m.startswith("cnn.mx.lightning")
            and m not in ALLOWED_CNN_MODULES | allowed_runtime] == []
