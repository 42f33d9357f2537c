"""Seconds per training step of the MLX Trainer for each ``Trainer(precision=...)``, MNIST, on the CPU.

    PYTHONPATH=. python scripts/mlx_precision_speed.py [PRECISIONS] [STEPS] [DATA_DIR]

PRECISIONS: comma list (default ``32-true,bf16-mixed,16-mixed,64-true``); STEPS: timed steps after
3 untimed ones (default 15); DATA_DIR: where MNIST is (default ``../shared/data/mnist``). The real
``Classifier`` and ``DataModule`` (batch 128, dropout 0.3) in the real ``Trainer`` (compiled step,
no validation); a step's time is the interval between two ``on_train_batch_end`` calls. Prints the
median, min and max for each precision, and the last training loss.
"""

from __future__ import annotations

import statistics
import sys
import time

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.datamodule import DataModule
from cnn.mx.lightning.callbacks import Callback
from cnn.mx.lightning.trainer import Trainer
from cnn.mx.module import Classifier

import mlx.core as mx

WARM_UP = 3


class StepClock(Callback):
    """``time.perf_counter()`` at the end of every training batch."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())


def main(argv: list[str]) -> None:
    precisions = (argv[0] if argv else "32-true,bf16-mixed,16-mixed,64-true").split(",")
    steps = int(argv[1]) if len(argv) > 1 else 15
    data_dir = argv[2] if len(argv) > 2 else "../shared/data/mnist"
    for precision in precisions:
        mx.random.seed(0)
        clock = StepClock()
        trainer = Trainer(max_steps=WARM_UP + steps, precision=precision, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                          accelerator="cpu", callbacks=[clock])
        trainer.fit(Classifier(dropout=0.3), datamodule=DataModule(data_dir=data_dir, download=False,
                                                                   batch_size=128, seed=0))
        times = [b - a for a, b in zip(clock.ends[WARM_UP - 1:], clock.ends[WARM_UP:])]
        print(f"{precision}: median {statistics.median(times) * 1e3:.0f} ms/step over {len(times)} steps "
              f"(min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f}); "
              f"last train/loss {trainer.callback_metrics['train/loss']:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
