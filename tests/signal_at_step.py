"""Test-only callbacks, named in a YAML's ``trainer.callbacks``, acting at a given training step.

``{Torch,Mlx}SignalAtStep(step, signum)`` send the running process a signal once
``trainer.global_step`` reaches ``step``: ``fit`` stops through the real signal path at a known
batch, without touching ``max_steps`` (which would also change the lr schedule's length).
``{Torch,Mlx}SignalAtBatch(stage, batch, signum)`` do the same after batch ``batch`` of a
``validation``, ``test`` or ``predict`` loop.
``{Torch,Mlx}MarkAtStep(step, path)`` create ``path`` then, for a test that waits for training
to be under way before it signals the process from outside; ``{Torch,Mlx}MarkAtBatch(stage,
path)`` append ``batch`` to ``path`` as that loop's first batch starts. ``{Torch,Mlx}KillAtSave(save)``
SIGKILL the process in its ``save``-th checkpoint write, as a kill while a file is written.
Each class is built on first use, so a torch run never imports MLX, nor an MLX run Lightning.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


class _SignalAtStep:
    def __init__(self, step: int, signum: int = int(signal.SIGTERM), rank: int | None = None):
        """
        Args:
            step: send the signal once ``trainer.global_step`` reaches this.
            signum: the signal to send (15: SIGTERM, 2: SIGINT, 9: SIGKILL).
            rank: in a distributed run, only the process of this global rank signals itself
                (None: every rank).
        """
        self.step, self.signum, self.rank, self.done = step, signum, rank, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.rank not in (None, trainer.global_rank):
            return
        if trainer.global_step >= self.step and not self.done:
            self.done = True
            os.kill(os.getpid(), self.signum)


class _SignalAtBatch:
    def __init__(self, stage: str, batch: int = 0, signum: int = int(signal.SIGTERM)):
        """
        Args:
            stage: ``validation``, ``test`` or ``predict``: the loop whose batch counts.
            batch: send the signal after this batch (its index) of that loop.
            signum: the signal to send (15: SIGTERM, 2: SIGINT).
        """
        self.stage, self.batch, self.signum, self.done = stage, batch, signum, False

    def _at(self, stage: str, batch_idx: int) -> None:
        if stage == self.stage and batch_idx >= self.batch and not self.done:
            self.done = True
            os.kill(os.getpid(), self.signum)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *rest) -> None:
        self._at("validation", batch_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *rest) -> None:
        self._at("test", batch_idx)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *rest) -> None:
        self._at("predict", batch_idx)


class _MarkAtStep:
    def __init__(self, step: int, path: str):
        """
        Args:
            step: create ``path`` once ``trainer.global_step`` reaches this.
            path: the marker file.
        """
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            Path(self.path).touch()


class _MarkAtBatch:
    def __init__(self, stage: str, path: str):
        """
        Args:
            stage: ``validation``, ``test`` or ``predict``: the loop whose first batch counts.
            path: a file to which ``batch`` is appended as that batch starts.
        """
        self.stage, self.path = stage, path

    def _at(self, stage: str, batch_idx: int) -> None:
        if stage == self.stage and batch_idx == 0:
            with open(self.path, "a") as log:
                log.write("batch\n")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *rest) -> None:
        self._at("validation", batch_idx)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, *rest) -> None:
        self._at("test", batch_idx)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, *rest) -> None:
        self._at("predict", batch_idx)


class _KillAtSave:
    def __init__(self, save: int):
        """
        Args:
            save: SIGKILL the process in the ``save``-th checkpoint write (1: the first), after
                the checkpoint's state is gathered and before any byte of it is written.
        """
        self.save, self.saves = save, 0

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.saves += 1
        if self.saves == self.save:
            os.kill(os.getpid(), signal.SIGKILL)


KINDS = {"SignalAtStep": _SignalAtStep, "SignalAtBatch": _SignalAtBatch,
         "MarkAtStep": _MarkAtStep, "MarkAtBatch": _MarkAtBatch, "KillAtSave": _KillAtSave}
_built: dict[str, type] = {}


def __getattr__(name: str) -> type:
    framework = "Torch" if name.startswith("Torch") else "Mlx"
    kind = KINDS.get(name[len(framework):]) if name.startswith(framework) else None
    if kind is None:
        raise AttributeError(name)
    if name not in _built:
        if framework == "Torch":
            from lightning.pytorch import Callback
        else:
            from cnn.mx.lightning.callbacks import Callback
        _built[name] = type(name, (kind, Callback), {"__module__": __name__})
    return _built[name]
