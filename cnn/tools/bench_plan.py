"""What ``cli.py bench`` runs: its settings, read once from the config and the command line, and
the steps and batches of one repeat.

``Plan`` numbers one repeat's training steps from 0 (W = max(warmup, 1), S = steps): ``[0, W)``
untimed warm-up, ``[W, W+S)`` the throughput window, ``[W+S, W+2S)`` the forward/backward
window, then with ``--full-epoch`` one epoch's worth of further steps. ``EvalPlan`` does the same
for evaluation batches, ending with the test pass. This module never imports torch or mlx.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Callable, Iterator

import numpy as np

from cnn.data.pipeline import NumpyBatches, PreparedData

PRECISIONS = ("32-true", "bf16-mixed")


class BenchError(Exception):
    """Something the user asked for that cannot be run; the message is one line."""


@dataclass(frozen=True)
class Plan:
    """Which training steps (numbered from 0 within one repeat) fall in which window."""

    warmup: int
    steps: int
    epoch_steps: int = 0  # 0: no measured epoch (``--full-epoch`` off)

    @property
    def throughput(self) -> range:
        return range(self.warmup, self.warmup + self.steps)

    @property
    def fwd_bwd(self) -> range:
        return range(self.warmup + self.steps, self.warmup + 2 * self.steps)

    @property
    def epoch(self) -> range:
        return range(self.fwd_bwd.stop, self.fwd_bwd.stop + self.epoch_steps)

    @property
    def total(self) -> int:
        return self.epoch.stop


@dataclass(frozen=True)
class EvalPlan:
    """Evaluation batches of one repeat: warm-up, timed ``steps``, then the test pass."""

    warmup: int
    steps: int
    test_batches: int

    @property
    def throughput(self) -> range:
        return range(self.warmup, self.warmup + self.steps)

    @property
    def test(self) -> range:
        return range(self.throughput.stop, self.throughput.stop + self.test_batches)

    @property
    def total(self) -> int:
        return self.test.stop


def batch_images(batch) -> int:
    return len(batch[1])  # labels: the last batch of an epoch may be short


def endless(batches: NumpyBatches) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The train stream epoch after epoch, each epoch in the order a trainer would use."""
    epoch = 0
    while True:
        batches.set_epoch(epoch)
        yield from batches
        epoch += 1


class EvalBatches:
    """The evaluation batches of one ``EvalPlan``, as one sized loader (Lightning accepts it).

    Warm-up and throughput batches cycle over the full test split (whole batches only, so the
    timed ones all have ``batch_size`` images); then one pass over the first ``test_images``
    test images, the last batch possibly short. ``convert`` turns numpy into tensors.
    """

    def __init__(self, data: PreparedData, plan: EvalPlan, batch_size: int, layout: str,
                 test_images: int, convert: Callable = lambda batch: batch):
        self.data, self.plan, self.batch_size = data, plan, batch_size
        self.layout, self.test_images, self.convert = layout, test_images, convert

    def __len__(self) -> int:
        return self.plan.total

    def __iter__(self):
        # Lazily, batch by batch: producing a batch is part of evaluating it, as in training.
        split = self.data.batches("test", self.batch_size, self.layout)
        full = (b for b in endless(split) if batch_images(b) == self.batch_size)
        test = self.data.batches("test", self.batch_size, self.layout, limit=self.test_images)
        for batch in chain(islice(full, self.plan.throughput.stop), test):
            yield self.convert(batch)


@dataclass
class Settings:
    """Everything a measurement needs, read once from the config and the command line."""

    data: PreparedData
    dataset: str
    batch_sizes: list[int]
    eval_batch_size: int
    model: dict  # lr, weight_decay, dropout, lr_schedule (the config's model section)
    seed: int
    device: str  # "cpu" | "gpu"
    warmup: int
    steps: int
    full_epoch: bool
    test_images: int
    augment: bool = False  # the config's data.augment, applied to training batches
    precision: str = "32-true"  # torch: "32-true" or "bf16-mixed" (autocast), both variants
    data_options: dict = field(default_factory=dict)  # data_dir, image_size, channels (folder)

    @property
    def spec(self):
        return self.data.spec

    def datamodule_args(self, batch_size: int) -> dict:
        """Either side's ``DataModule`` arguments for a run at ``batch_size``."""
        return {"dataset": self.dataset, "batch_size": batch_size,
                "eval_batch_size": self.eval_batch_size, "seed": self.seed,
                "augment": self.augment, **self.data_options}

    @property
    def train_images(self) -> int:
        return len(self.data.splits["train"].labels)

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.train_images / batch_size)

    def plan(self, batch_size: int) -> Plan:
        epoch = self.steps_per_epoch(batch_size) if self.full_epoch else 0
        return Plan(max(self.warmup, 1), self.steps, epoch)

    def eval_plan(self) -> EvalPlan:
        return EvalPlan(max(self.warmup, 1), self.steps,
                        math.ceil(self.test_images / self.eval_batch_size))

    def eval_batches(self, layout: str, convert: Callable = lambda batch: batch) -> EvalBatches:
        return EvalBatches(self.data, self.eval_plan(), self.eval_batch_size, layout,
                           self.test_images, convert)


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise BenchError(f"--batch-sizes must be positive integers separated by commas, "
                         f"not {text!r}")
    return sizes


def check_batch_sizes(sizes: list[int], data_cfg: dict, train_images: int, dataset: str) -> None:
    """The bounds ``fit`` puts on ``data.batch_size`` (``cnn.limits.check_batch_fits_memory``,
    ``cnn.data.datamodule.check_batch_fits_data``) on each batch size bench is asked to time:
    ConfigError naming the first that does not fit."""
    from cnn.data.datamodule import check_batch_fits_data
    from cnn.errors import ConfigError
    from cnn.limits import check_batch_fits_memory

    for size in sizes:
        try:
            check_batch_fits_memory({"data": {**data_cfg, "dataset": dataset, "batch_size": size}})
            check_batch_fits_data(size, train_images, dataset)
        except ConfigError as error:  # told in fit's words, of bench's option
            raise BenchError(str(error).replace("data.batch_size is", "--batch-sizes has", 1)) from None


def read_settings(args, config: dict) -> Settings:
    """The config's ``data``, ``model`` and ``seed_everything`` plus the command line."""
    from cnn.config import seed_value

    for name, least in (("steps", 1), ("repeats", 1), ("fit_epochs", 1), ("warmup", 0)):
        if getattr(args, name) < least:
            raise BenchError(f"--{name.replace('_', '-')} must be at least {least}")
    data_cfg, model_cfg = config.get("data") or {}, config.get("model") or {}
    sizes = _batch_sizes(args.batch_sizes or str(data_cfg.get("batch_size", 128)))
    seed = seed_value(config.get("seed_everything"))
    dataset = data_cfg.get("dataset", "mnist")
    options = {"data_dir": args.data_dir or data_cfg.get("data_dir"),
               "image_size": data_cfg.get("image_size"), "channels": data_cfg.get("channels")}
    data = PreparedData(dataset, val_fraction=data_cfg.get("val_fraction", 0.1), seed=seed,
                        download=data_cfg.get("download", True),
                        test_fraction=data_cfg.get("test_fraction", 0.1), **options)
    check_batch_sizes(sizes, data_cfg, len(data.splits["train"].labels), dataset)
    test_total = len(data.splits["test"].labels)
    test_images = test_total if args.test_images is None else args.test_images
    if not 1 <= test_images <= test_total:
        raise BenchError(f"--test-images must be between 1 and {test_total}")
    eval_batch_size = int(data_cfg.get("eval_batch_size", 1000))
    if not 1 <= eval_batch_size <= test_total:  # timed evaluation batches are whole ones
        raise BenchError(f"data.eval_batch_size must be between 1 and {test_total}")
    model = {k: model_cfg[k] for k in ("lr", "weight_decay", "dropout", "lr_schedule")
             if k in model_cfg}
    model.setdefault("lr", 1e-3)
    # torch's own switches (the MLX Classifier accepts and ignores them): flag, else config
    for key, flag, default in (("channels_last", args.channels_last, True),
                               ("compile", args.compile, False)):
        model[key] = bool(model_cfg.get(key, default) if flag is None else flag)
    precision = args.precision or str((config.get("trainer") or {}).get("precision", "32-true"))
    precision = {"32": "32-true", "bf16": "bf16-mixed"}.get(precision, precision)
    if precision not in PRECISIONS:
        raise BenchError(f"precision {precision!r}: bench runs {' or '.join(PRECISIONS)}")
    return Settings(data, dataset, sizes, eval_batch_size, model, seed, args.device,
                    args.warmup, args.steps, args.full_epoch, test_images,
                    bool(data_cfg.get("augment", False)), precision, options)
