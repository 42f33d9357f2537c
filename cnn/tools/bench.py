"""``python cli.py bench``: training and evaluation speed of every variant, from one config.

Variants: torch ``plain`` (the reference: a hand-written loop, Adam, NLL) and ``lightning``
(a real ``lightning.Trainer`` with our ``Classifier`` and ``DataModule``); MLX ``eager`` and
``compiled`` (hand-written loops, the latter ``mx.compile(inputs=state, outputs=state)`` as
mlx-examples do) and ``trainer_eager`` / ``trainer_compiled`` (our MLX ``Trainer``). All train
on the same real batches in the same order, produced live from the in-memory uint8 split
(slice, layout, tensor conversion) as in ``fit``. Both torch variants follow ``--channels-last``,
``--compile`` and ``--precision`` (default: the config's), so their ratio compares loops.

Every figure is the median of ``--repeats`` repeats, min and max kept (with an odd count
the img/s and ms/step medians come from the same repeat; with an even one each is the mean
of its two middle values, so they need not be reciprocal). Repeats are
interleaved (repeat 1 of every variant, then repeat 2, ...) so a background load spreads over
all variants. One repeat of one variant at one batch size builds a fresh model, then runs
steps numbered from 0 (W = max(warmup, 1), S = steps, see ``Plan``): ``[0, W)`` untimed
warm-up, ``[W, W+S)`` the throughput window, ``[W+S, W+2S)`` the forward/backward window (it
synchronises inside every step, so it is kept apart), and with ``--full-epoch`` one epoch's
worth of further steps. Clocks are read after synchronising: ``torch.cuda.synchronize()`` on
a GPU; ``mx.eval`` of loss, parameters, optimizer and RNG state in MLX, which is lazy.
Evaluation does not depend on the training batch size, so it is measured once per variant
and repeat, at the config's ``eval_batch_size`` (``EvalPlan``). Module contents: the timing
core shared by ``bench_torch`` and ``bench_mlx`` (``Plan``, ``TrainClock``, ``EvalClock``,
``summarize``), then the command (``main``). This module never imports torch or mlx.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from itertools import chain, islice
from pathlib import Path
from statistics import median
from typing import Callable, Iterator

import numpy as np

from cnn import atomic
from cnn.data.pipeline import NumpyBatches, PreparedData

clock = time.perf_counter  # module attribute, so tests can replace the clock


class BenchError(Exception):
    """Something the user asked for that cannot be run; the message is one line."""


def summarize(values: list[float]) -> dict:
    """``{"median", "min", "max", "values"}`` of repeated measurements (same unit as values).

    The median of an even count is the mean of the two middle values.
    """
    if not values:
        raise ValueError("summarize needs at least one value")
    return {"median": median(values), "min": min(values), "max": max(values),
            "values": list(values)}


# ---------------------------------------------------------------- what one repeat runs
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


@dataclass
class Span:
    """A timed window: clock readings in seconds, minus time spent between epochs."""

    start: float | None = None
    end: float | None = None
    excluded: float = 0.0
    steps: int = 0
    images: int = 0

    @property
    def seconds(self) -> float:
        return self.end - self.start - self.excluded

    @property
    def open(self) -> bool:
        return self.start is not None and self.end is None


@dataclass
class TrainRun:
    """One repeat of one variant at one batch size (all times in seconds)."""

    first_step_s: float
    throughput: Span
    fwd_s: list[float]
    bwd_s: list[float]
    epoch: Span | None


@dataclass
class EvalRun:
    """One evaluation repeat of one variant (times in seconds)."""

    throughput: Span
    test: Span


def _count(batch) -> int:
    return len(batch[1])  # labels: the last batch of an epoch may be short


class TrainClock:
    """Reads the clock at the window edges of a ``Plan``, through Lightning's hook names.

    The Lightning and MLX Trainer callbacks inherit it (both call these hooks in the same
    order); the hand-written loops call the same hooks themselves, so every variant is timed
    by one piece of code. ``sync(*arrays)`` must block until the device has finished (and,
    in MLX, evaluate ``arrays``). ``on_before_backward`` ends the forward part of a step;
    with ``backward_includes_forward`` (MLX loops, whose step re-runs the forward) the
    forward time is subtracted from the rest. A window crossing an epoch end does not count
    the time from ``on_train_epoch_end`` to the next ``on_train_epoch_start`` (a trainer's
    epoch-end work: the train-accuracy probe, which the loops do not do).
    """

    def __init__(self, plan: Plan, sync: Callable, built_at: float,
                 backward_includes_forward: bool = False):
        self.plan, self.sync, self.built_at = plan, sync, built_at
        self.backward_includes_forward = backward_includes_forward
        self.step, self.first_step_s = 0, None
        self.spans = {"throughput": Span(), "epoch": Span()}
        self.fwd_s: list[float] = []
        self.bwd_s: list[float] = []
        self._t0 = self._t1 = self._gap_from = None

    def _window(self, k: int) -> tuple[range, Span] | None:
        for name in self.spans:
            window = getattr(self.plan, name)
            if k in window:
                return window, self.spans[name]
        return None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        found = self._window(self.step)
        if found and self.step == found[0].start:
            self.sync()
            found[1].start = clock()
        if self.step in self.plan.fwd_bwd:
            self.sync()
            self._t0, self._t1 = clock(), None

    def on_before_backward(self, trainer, module, loss) -> None:
        if self.step in self.plan.fwd_bwd:
            self.sync(loss)
            self._t1 = clock()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        k = self.step
        if k == 0:
            self.sync()
            self.first_step_s = clock() - self.built_at
        if k in self.plan.fwd_bwd and self._t1 is not None:  # no hook: not separable
            self.sync()
            forward, rest = self._t1 - self._t0, clock() - self._t1
            self.fwd_s.append(forward)
            self.bwd_s.append(rest - forward if self.backward_includes_forward else rest)
        found = self._window(k)
        if found:
            window, span = found
            span.steps, span.images = span.steps + 1, span.images + _count(batch)
            if k == window.stop - 1:
                self.sync()
                span.end = clock()
        self.step += 1

    def on_train_epoch_end(self, trainer, module) -> None:
        if any(span.open for span in self.spans.values()):
            self.sync()
            self._gap_from = clock()

    def on_train_epoch_start(self, trainer, module) -> None:
        if self._gap_from is not None:
            self.sync()  # the epoch-end work may have queued device work too
            for span in self.spans.values():
                if span.open:
                    span.excluded += clock() - self._gap_from
            self._gap_from = None

    def result(self) -> TrainRun:
        if self.step < self.plan.total:
            raise RuntimeError(f"the run stopped after {self.step} of {self.plan.total} steps")
        return TrainRun(self.first_step_s, self.spans["throughput"], self.fwd_s, self.bwd_s,
                        self.spans["epoch"] if self.plan.epoch_steps else None)


class EvalClock:
    """``TrainClock``'s counterpart for evaluation batches (validation hook names)."""

    def __init__(self, plan: EvalPlan, sync: Callable):
        self.plan, self.sync, self.index = plan, sync, 0
        self.spans = {"throughput": Span(), "test": Span()}

    def _window(self, k: int) -> tuple[range, Span] | None:
        for name, span in self.spans.items():
            if k in getattr(self.plan, name):
                return getattr(self.plan, name), span
        return None

    def on_validation_batch_start(self, trainer, module, batch, batch_idx,
                                  dataloader_idx: int = 0) -> None:
        found = self._window(self.index)
        if found and self.index == found[0].start:
            self.sync()
            found[1].start = clock()

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx,
                                dataloader_idx: int = 0) -> None:
        found = self._window(self.index)
        if found:
            window, span = found
            span.steps, span.images = span.steps + 1, span.images + _count(batch)
            if self.index == window.stop - 1:
                self.sync(outputs)
                span.end = clock()
        self.index += 1

    def result(self) -> EvalRun:
        if self.index < self.plan.total:
            raise RuntimeError(f"evaluation stopped after {self.index} of {self.plan.total}")
        return EvalRun(self.spans["throughput"], self.spans["test"])


# ---------------------------------------------------------------- batches
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
        full = (b for b in endless(split) if _count(b) == self.batch_size)
        test = self.data.batches("test", self.batch_size, self.layout, limit=self.test_images)
        for batch in chain(islice(full, self.plan.throughput.stop), test):
            yield self.convert(batch)


# ---------------------------------------------------------------- what a variant measures
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


def train_figures(runs: list[TrainRun], settings: Settings) -> dict:
    """Per-repeat figures of training -> ``summarize``d: name -> {median, min, max, values}.

    ``train_img_per_s`` images/second and ``ms_per_step`` milliseconds over the throughput
    window; ``fwd_ms`` / ``bwd_ms`` mean milliseconds per batch in the forward/backward
    window (absent when not separable); ``first_step_s`` and ``epoch_s`` seconds.
    """
    img_s = [r.throughput.images / r.throughput.seconds for r in runs]
    out = {"train_img_per_s": img_s,
           "ms_per_step": [1e3 * r.throughput.seconds / r.throughput.steps for r in runs],
           "first_step_s": [r.first_step_s for r in runs]}
    if all(r.fwd_s for r in runs):
        out["fwd_ms"] = [1e3 * sum(r.fwd_s) / len(r.fwd_s) for r in runs]
        out["bwd_ms"] = [1e3 * sum(r.bwd_s) / len(r.bwd_s) for r in runs]
    if all(r.epoch is not None for r in runs):
        out["epoch_s"] = [r.epoch.seconds for r in runs]
    else:  # the same images at the measured rate
        out["epoch_s"] = [settings.train_images / rate for rate in img_s]
    return {name: summarize(values) for name, values in out.items()}


def eval_figures(runs: list[EvalRun]) -> dict:
    """``eval_img_per_s`` (images/second) and ``test_set_s`` (seconds), ``summarize``d."""
    return {"eval_img_per_s": summarize([r.throughput.images / r.throughput.seconds
                                         for r in runs]),
            "test_set_s": summarize([r.test.seconds for r in runs])}


# ---------------------------------------------------------------- the command
FRAMEWORKS = {"torch": "cnn.tools.bench_torch", "mlx": "cnn.tools.bench_mlx"}
RATIOS = (("MLX compiled / torch plain", ("mlx", "compiled"), ("torch", "plain")),
          ("Lightning / plain", ("torch", "lightning"), ("torch", "plain")),
          ("MLX Trainer compiled / MLX compiled", ("mlx", "trainer_compiled"), ("mlx", "compiled")))
UNITS = {"train_img_per_s": "images/s", "ms_per_step": "ms", "fwd_ms": "ms", "bwd_ms": "ms",
         "first_step_s": "s", "epoch_s": "s", "eval_img_per_s": "images/s", "test_set_s": "s"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise BenchError(message)


PRECISIONS = ("32-true", "bf16-mixed")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cli.py bench", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="YAML config, e.g. configs/mnist.yaml")
    p.add_argument("--data-dir", default=None,
                   help="the config's data.data_dir instead (dataset folder: your images)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--batch-sizes", default=None, help="comma list (default: data.batch_size)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per window")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (at least 1)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--full-epoch", action="store_true", help="measure epoch_s (slow)")
    p.add_argument("--test-images", type=int, default=None,
                   help="images of the test pass (default: the whole test split)")
    p.add_argument("--out", type=Path, help="write every figure as JSON here")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--logdir", type=Path, default=Path("logs/bench"),
                   help="TensorBoard scalars go to LOGDIR/version_N")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="torch, both variants: channels_last memory format (default: the "
                        "config's model.channels_last, else on)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch, both variants: torch.compile the network (default: the "
                        "config's model.compile, else off)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="torch, both variants (bf16-mixed: autocast in the plain loop, "
                        "Trainer(precision=...) in Lightning; default: the config's "
                        "trainer.precision, else 32-true)")
    p.add_argument("--fit-memory", action="store_true",
                   help="also run `fit` in a subprocess: peak resident memory and wall time")
    p.add_argument("--fit-epochs", type=int, default=1)
    p.add_argument("--fit-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for that fit, e.g. --fit-arg=--trainer.limit_val_batches=2")
    return p


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


def load_frameworks(frameworks: list[str], device: str) -> dict:
    """Import ``bench_torch`` / ``bench_mlx`` as asked and check that ``device`` exists.

    torch first: loaded after ``cnn.mx`` (which may load a system OpenBLAS globally for MLX),
    torch's matrix products would bind to OpenBLAS instead of its own MKL (see ``bench_torch``).
    """
    modules = {fw: importlib.import_module(FRAMEWORKS[fw]) for fw in FRAMEWORKS if fw in frameworks}
    for module in modules.values():
        module.check_device(device)
    return modules


def measure(settings: Settings, modules: dict, repeats: int, progress=print) -> tuple:
    """Run every repeat, interleaved; returns ``(train rows, eval rows)`` of summarized figures."""
    started = clock()
    say = lambda text: progress(f"[{clock() - started:6.1f} s] {text}")  # noqa: E731
    train_runs: dict[tuple, list[TrainRun]] = {}
    eval_runs: dict[tuple, list[EvalRun]] = {}
    for repeat in range(repeats):
        for fw, module in modules.items():
            for variant, (train, evaluate, _) in module.VARIANTS.items():
                for size in settings.batch_sizes:
                    say(f"repeat {repeat + 1}/{repeats}: {fw} {variant} batch {size}")
                    train_runs.setdefault((fw, variant, size), []).append(train(settings, size))
                say(f"repeat {repeat + 1}/{repeats}: {fw} {variant} evaluation")
                eval_runs.setdefault((fw, variant), []).append(evaluate(settings))
    train_rows = []
    for (fw, variant, size), runs in train_runs.items():
        figures = train_figures(runs, settings)
        row = {"framework": fw, "variant": variant, "batch_size": size,
               "description": modules[fw].VARIANTS[variant][2],
               "steps_per_epoch": settings.steps_per_epoch(size),
               "epoch_estimated": not settings.full_epoch, "figures": figures}
        if "fwd_ms" not in figures:
            row["not_measured"] = {"fwd_ms and bwd_ms": "not separable: no on_before_backward "
                                                        "between them (one compiled graph)"}
        train_rows.append(row)
    eval_rows = [{"framework": fw, "variant": variant, "eval_batch_size": settings.eval_batch_size,
                  "test_images": settings.test_images, "figures": eval_figures(runs)}
                 for (fw, variant), runs in eval_runs.items()]
    return train_rows, eval_rows


def ratios(train_rows: list[dict]) -> list[dict]:
    """``RATIOS`` of median train images/second, in percent, per batch size."""
    by_key = {(r["framework"], r["variant"], r["batch_size"]): r for r in train_rows}
    out = []
    for name, top, bottom in RATIOS:
        for (fw, variant, size), row in by_key.items():
            other = by_key.get((*bottom, size))
            if (fw, variant) == top and other:
                rate = lambda r: r["figures"]["train_img_per_s"]["median"]  # noqa: E731
                out.append({"name": name, "batch_size": size,
                            "percent": 100.0 * rate(row) / rate(other)})
    return out


# ---------------------------------------------------------------- what else the report says
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def metadata_of(settings: Settings, modules: dict, command: str) -> dict:
    """Versions, devices, threads, BLAS, load, settings: what a reader needs to trust a figure."""
    versions = {"python": platform.python_version()}
    for package in ("torch", "lightning", "mlx", "numpy", "tensorboard"):
        try:
            versions[package] = metadata.version(package)  # without importing it
        except metadata.PackageNotFoundError:
            versions[package] = None
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command, "host": platform.node(), "platform": platform.platform(),
            "cpu_model": cpu_model(), "device": settings.device, "versions": versions,
            "threads": {"os.cpu_count": os.cpu_count(),
                        "affinity": len(os.sched_getaffinity(0))
                        if hasattr(os, "sched_getaffinity") else None,
                        **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                          "OPENBLAS_NUM_THREADS",
                                                          "MKL_NUM_THREADS")}},
            "loadavg_start": list(os.getloadavg()),
            "dataset": settings.dataset, "train_images": settings.train_images,
            "settings": {"batch_sizes": settings.batch_sizes, "steps": settings.steps,
                         "warmup": max(settings.warmup, 1), "full_epoch": settings.full_epoch,
                         "eval_batch_size": settings.eval_batch_size,
                         "test_images": settings.test_images, "seed": settings.seed,
                         "precision": settings.precision, **settings.model},
            "units": UNITS}
    for fw, module in modules.items():  # device name, threads, BLAS: each framework's words
        meta[fw] = module.describe(settings.device)
    return meta


def _cell(figure: dict | None, digits: int, spread: bool = False) -> str:
    if figure is None:
        return "-"
    text = f"{figure['median']:,.{digits}f}"
    return text + f" [{figure['min']:,.{digits}f}-{figure['max']:,.{digits}f}]" if spread else text


def table(report: dict) -> str:
    """The aligned text table of every row, then the ratio lines."""
    evals = {(r["framework"], r["variant"]): r["figures"] for r in report["eval"]}
    ebs = report["meta"]["settings"]["eval_batch_size"]
    head = ("framework", "variant", "batch", "train img/s median [min-max]", "ms/step",
            "fwd ms", "bwd ms", "first step s", "epoch s", f"eval img/s (b{ebs})", "test set s")
    lines = [head]
    for row in report["results"]:
        f, e = row["figures"], evals.get((row["framework"], row["variant"]), {})
        epoch = ("~" if row["epoch_estimated"] else "") + _cell(f["epoch_s"], 1)
        lines.append((row["framework"], row["variant"], str(row["batch_size"]),
                      _cell(f["train_img_per_s"], 0, True), _cell(f["ms_per_step"], 2),
                      _cell(f.get("fwd_ms"), 2), _cell(f.get("bwd_ms"), 2),
                      _cell(f["first_step_s"], 2), epoch, _cell(e.get("eval_img_per_s"), 0),
                      _cell(e.get("test_set_s"), 2)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                      enumerate(zip(line, widths))) for line in lines]
    text.insert(1, "-" * len(text[0]))
    text += [f"{r['name']} = {r['percent']:.0f}% (batch {r['batch_size']})"
             for r in report["ratios"]]
    if any(row["epoch_estimated"] for row in report["results"]):
        text.append("~ epoch s estimated: train images / train img/s (--full-epoch measures it)")
    return "\n".join(text)


def write_json(path: Path, report: dict) -> None:
    """Atomically (``cnn.atomic``): a reader never sees half a file."""
    atomic.write_text(atomic.output_target(path), json.dumps(report, indent=2) + "\n")


def write_scalars(logdir: Path, report: dict) -> Path:
    """Median figures as TensorBoard scalars in a new ``LOGDIR/version_N``.

    Tags ``bench/<framework>/<variant>/<figure>``; the step is the batch size (the eval batch
    size for ``eval_img_per_s`` and ``test_set_s``). Written with tensorboard's own writer,
    so the MLX side needs no torch.
    """
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    n = 0
    while (logdir / f"version_{n}").exists():
        n += 1
    run_dir = logdir / f"version_{n}"
    run_dir.mkdir(parents=True)
    writer = EventFileWriter(str(run_dir))
    rows = [(r, r["batch_size"]) for r in report["results"]]
    rows += [(r, r["eval_batch_size"]) for r in report["eval"]]
    for row, step in rows:
        for name, figure in row["figures"].items():
            tag = f"bench/{row['framework']}/{row['variant']}/{name}"
            value = Summary.Value(tag=tag, simple_value=figure["median"])
            writer.add_event(Event(wall_time=time.time(), step=step,
                                   summary=Summary(value=[value])))
    writer.close()
    return run_dir


def write_peak_rss(path: str) -> None:
    """Write this process's peak resident memory in KiB (``VmHWM``) to ``path``; nothing where
    ``/proc`` is missing. Registered with ``atexit`` by the ``fit`` that ``fit_memory`` starts."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    Path(path).write_text(line.split()[1])
                    return
    except OSError:
        return


def fit_memory(config: Path, framework: str, device: str, epochs: int, extra: list[str]) -> dict:
    """Run ``cli.py fit`` in a subprocess: its peak resident memory (MiB) and wall time (s).

    The peak is the child's own ``VmHWM`` (``/proc/self/status``), which it writes to a file
    as it exits. Not ``ru_maxrss``: Linux carries a process's peak across ``fork`` and
    ``exec``, so a child forked from this bench process, which holds both frameworks, would
    report this process's resident size, the same for both frameworks (docs/performance.md,
    "Peak memory"). Where ``/proc`` is missing (macOS) the
    ``os.wait4`` figure is reported instead, flagged ``peak_rss_source: "ru_maxrss"``. Logs and
    checkpoints go to a temporary folder, removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        peak_file = Path(tmp) / "peak"
        command = [sys.executable, "-c", "import atexit, sys; from cnn.tools.bench import "
                   f"write_peak_rss; atexit.register(write_peak_rss, {str(peak_file)!r}); "
                   "from cnn.cli import main; sys.exit(main(sys.argv[1:]))", "fit", "--config", str(config),
                   "--framework", framework, "--trainer.max_epochs", str(epochs),
                   "--trainer.enable_progress_bar", "false", "--trainer.accelerator", device,
                   "--trainer.default_root_dir", tmp, *extra]
        log_path = Path(tmp) / "fit.log"
        with open(log_path, "wb") as log:
            started = clock()
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(child.pid, 0)
            wall = clock() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        own_peak = peak_file.read_text().strip() if peak_file.exists() else ""
    peak, source = (int(own_peak) / 1024.0, "VmHWM") if own_peak else (usage.ru_maxrss / 1024.0,
                                                                        "ru_maxrss")
    return {"framework": framework, "epochs": epochs, "returncode": child.returncode,
            "peak_rss_mib": peak, "peak_rss_source": source, "wall_s": wall,
            "command": shlex.join(["python", "cli.py", *command[3:]]),
            "last_line": tail[0] if child.returncode else None}


def main(argv: list[str], framework: str | None = "torch") -> int:
    """Entry point of ``cli.py bench``; returns the exit status (2: a user error, one line)."""
    try:
        args = _parser().parse_args(argv)
        framework = framework or "torch"
        if framework not in (*FRAMEWORKS, "both"):
            raise BenchError(f"unknown framework {framework!r}: choose torch, mlx or both")
        frameworks = list(FRAMEWORKS) if framework == "both" else [framework]
        from cnn.bounded_yaml import read_config  # as fit reads it: bounded, one line when wrong

        config = read_config(args.config)
        if args.out:  # before minutes of measuring, and never over a checkpoint or the config
            atomic.check_output(args.out, args.force, "the .json file")
        settings = read_settings(args, config)
        command = shlex.join(["python", "cli.py", "bench", "--framework", framework, *argv])
        modules = load_frameworks(frameworks, args.device)
        meta = metadata_of(settings, modules, command)
        train_rows, eval_rows = measure(settings, modules, args.repeats,
                                        progress=lambda line: print(line, file=sys.stderr))
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except Exception as error:  # noqa: BLE001 - narrowed just below
        from cnn.errors import ConfigError, DataError
        if not isinstance(error, (BenchError, DataError, ConfigError, OSError)):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    meta["loadavg_end"] = list(os.getloadavg())
    report = {"schema": "cnn-bench/1", "meta": meta, "results": train_rows, "eval": eval_rows,
              "ratios": ratios(train_rows), "fit_memory": []}
    if args.fit_memory:
        fit_args = (["--data.data_dir", args.data_dir] if args.data_dir else []) + args.fit_arg
        for fw in frameworks:
            print(f"fit: {fw}, {args.fit_epochs} epoch(s)", file=sys.stderr)
            report["fit_memory"].append(fit_memory(Path(args.config), fw, args.device,
                                                   args.fit_epochs, fit_args))
    report["tensorboard_dir"] = str(write_scalars(args.logdir, report))
    print(table(report))
    for run in report["fit_memory"]:
        print(f"fit {run['framework']}: peak RSS {run['peak_rss_mib']:,.0f} MiB, "
              f"{run['wall_s']:.1f} s, exit {run['returncode']}")
    if args.out:
        write_json(args.out, report)
    return 1 if any(run["returncode"] for run in report["fit_memory"]) else 0
