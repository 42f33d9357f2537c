"""The torch half of ``cli.py bench``: a hand-written loop and the same model through Lightning.

``VARIANTS`` maps a name to ``(train, evaluate, description)``: ``train(settings, batch_size)``
returns one ``TrainRun``, ``evaluate(settings)`` one ``EvalRun`` (see ``cnn.tools.bench_clock``).
On a GPU every clock reading follows ``torch.cuda.synchronize()``; on the CPU torch runs
synchronously, so there is nothing to wait for.

Both variants take the same switches from ``Settings`` (``--channels-last``, ``--compile``,
``--precision``): the plain loop does by hand what ``Classifier`` and ``Trainer(precision=)``
do (channels_last network and batches, ``nn.Module.compile``, bf16 ``torch.autocast`` around
forward and loss). On a GPU both train on batches cut on the device from a resident copy of the
split (``cnn.pt.datamodule.DeviceSplit``), as ``fit`` does there, so neither pays a
host-to-device copy per step.
"""

from __future__ import annotations

import logging
import sys
import warnings
from contextlib import contextmanager, nullcontext
from typing import Callable

# libtorch_cpu looks its sgemm_ up through the process's global scope: if cnn.mx loaded
# OpenBLAS globally first, torch's matrix products run on OpenBLAS, not its own MKL, and would
# not be what `fit --framework torch` gets. `bench` imports this module first; this says if not.
_LOADED_AFTER_MLX_BLAS = "torch" not in sys.modules and "cnn.mx" in sys.modules

import cnn.pt  # noqa: E402, F401, I001  - before torch: OpenMP's wait policy, as fit has it
import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from cnn.pt.datamodule import DataModule  # noqa: E402
from cnn.pt.model import SeedCNN  # noqa: E402
from cnn.pt.module import Classifier  # noqa: E402
from cnn.schema import DEFAULT_DROPOUT  # noqa: E402
from cnn.tools import bench_clock  # noqa: E402
from cnn.tools.bench_clock import EvalClock, EvalRun, TrainClock, TrainRun  # noqa: E402
from cnn.tools.bench_plan import BenchError, Settings, endless  # noqa: E402
from cnn.tools.bench_report import cpu_model  # noqa: E402


def check_device(device: str) -> None:
    """Raise ``BenchError`` if torch cannot run on ``device`` ("cpu" or "gpu")."""
    if device == "gpu" and not torch.cuda.is_available():
        raise BenchError("--device gpu, but torch sees no CUDA GPU here")


def describe(device: str) -> dict:
    """Device name, thread counts and library versions, for the report's metadata."""
    gpu = device == "gpu"
    return {"device_name": torch.cuda.get_device_name(0) if gpu else cpu_model(),
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if gpu else None,
            "blas": ("maybe OpenBLAS: torch was loaded after cnn.mx" if _LOADED_AFTER_MLX_BLAS
                     else "torch's own")}


def synchronizer(device: str) -> Callable:
    """``sync(*tensors)``: returns once the device has finished all queued work."""
    if device == "gpu":
        return lambda *tensors: torch.cuda.synchronize()
    return lambda *tensors: None


def _device(settings: Settings) -> torch.device:
    return torch.device("cuda" if settings.device == "gpu" else "cpu")


def _network(settings: Settings) -> tuple[nn.Module, Callable]:
    """A fresh ``SeedCNN`` on the device, and the input scaling ``Classifier.forward`` does
    (channels_last and ``compile`` as ``Classifier`` applies them)."""
    spec, device = settings.spec, _device(settings)
    _fresh_compile(settings)
    torch.manual_seed(settings.seed)  # dropout masks
    net = SeedCNN(spec.channels, spec.image_size, spec.num_classes,
                  settings.model.get("dropout", DEFAULT_DROPOUT), settings.seed).to(device)
    channels_last = settings.model.get("channels_last", True)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if settings.model.get("compile", False):
        net.compile()
    mean = torch.tensor(settings.data.norm.mean, device=device)[:, None, None]
    std = torch.tensor(settings.data.norm.std, device=device)[:, None, None]

    def normalise(images: torch.Tensor) -> torch.Tensor:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return (images.float().div_(255.0) - mean) / std

    return net, normalise


def _fresh_compile(settings: Settings) -> None:
    """Each repeat compiles its fresh network from scratch (its first step says how long that
    takes), and never runs into dynamo's per-function cache limit, past which it would
    silently run eager."""
    if settings.model.get("compile", False):
        torch.compiler.reset()


def _autocast(settings: Settings):
    """What ``Trainer(precision="bf16-mixed")`` wraps forward and loss in; nothing for 32-true."""
    if settings.precision == "bf16-mixed":
        return torch.autocast(_device(settings).type, dtype=torch.bfloat16)
    return nullcontext()


def _to_device(batch, device: torch.device):
    return tuple((torch.from_numpy(array) if isinstance(array, np.ndarray) else array)
                 .to(device) for array in batch)


def _datamodule(settings: Settings, batch_size: int) -> DataModule:
    """Our ``DataModule`` over the already loaded data; on a GPU with its splits resident
    there (what its ``setup`` does under a CUDA trainer)."""
    datamodule = DataModule(**settings.datamodule_args(batch_size))
    datamodule.data = settings.data  # loaded once for every variant
    if settings.device == "gpu":
        datamodule.keep_resident_on(_device(settings))
    return datamodule


def train_plain(settings: Settings, batch_size: int) -> TrainRun:
    """The reference loop: forward, NLL, ``zero_grad``, backward, ``Adam.step``; no scheduler
    (one multiplication per step in Lightning's variant). Forward time = forward + loss;
    backward time = ``zero_grad`` + backward + optimizer step."""
    plan, device, sync = settings.plan(batch_size), _device(settings), synchronizer(settings.device)
    # The DataModule's stream: numpy slices on the CPU, device-resident batches on a GPU.
    batches = endless(_datamodule(settings, batch_size).train_dataloader())
    built_at = bench_clock.clock()
    net, normalise = _network(settings)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.model["lr"],
                                 weight_decay=settings.model.get("weight_decay", 0.0))
    timer = TrainClock(plan, sync, built_at)
    net.train()
    for k in range(plan.total):
        batch = next(batches)
        images, labels = _to_device(batch, device)  # before the hook, as Lightning does
        timer.on_train_batch_start(None, net, batch, k)
        with _autocast(settings):
            loss = nn.functional.nll_loss(net(normalise(images)), labels)
        timer.on_before_backward(None, net, loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        timer.on_train_batch_end(None, net, loss, batch, k)
    return timer.result()


def eval_plain(settings: Settings) -> EvalRun:
    """Eval mode under ``torch.inference_mode`` (as Lightning validates): logits, argmax, hits."""
    device, sync = _device(settings), synchronizer(settings.device)
    net, normalise = _network(settings)
    net.eval()
    timer = EvalClock(settings.eval_plan(), sync)
    with torch.inference_mode(), _autocast(settings):
        for i, batch in enumerate(settings.eval_batches("NCHW")):
            images, labels = _to_device(batch, device)
            timer.on_validation_batch_start(None, net, batch, i)
            hits = (net(normalise(images)).argmax(dim=1) == labels).sum()
            timer.on_validation_batch_end(None, net, hits, batch, i)
    return timer.result()


class LightningTrainClock(TrainClock, L.Callback):
    """``TrainClock`` as a Lightning callback: Lightning calls the hooks it defines."""


class LightningEvalClock(EvalClock, L.Callback):
    """``EvalClock`` as a Lightning callback."""


@contextmanager
def _quiet():
    """Lightning's start-up banner (GPU available, ...) and its "few batches" hints are
    noise in a benchmark table; real warnings still show."""
    from lightning.fabric.utilities.warnings import PossibleUserWarning

    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PossibleUserWarning)
            # Lightning 2.6 calling a pytree API that torch 2.13 deprecates: not ours to fix.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _trainer(settings: Settings, callback: L.Callback, **kwargs) -> L.Trainer:
    """A Trainer that does nothing but the loop: no logger, checkpoints, bar or summary."""
    return L.Trainer(accelerator="gpu" if settings.device == "gpu" else "cpu", devices=1,
                     precision=settings.precision, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     callbacks=[callback], **kwargs)


def _classifier(settings: Settings) -> Classifier:
    spec = settings.spec
    _fresh_compile(settings)
    torch.manual_seed(settings.seed)
    return Classifier(**settings.model, in_channels=spec.channels, image_size=spec.image_size,
                      num_classes=spec.num_classes, classes=spec.classes, seed=settings.seed)


def train_lightning(settings: Settings, batch_size: int) -> TrainRun:
    """``Trainer.fit`` of our ``Classifier`` on our ``DataModule`` (automatic optimization,
    ``train/loss`` logged on the steps Lightning writes, the cosine LR schedule),
    ``max_steps`` = the plan, validation off, no logger. Forward time: batch start to
    ``on_before_backward`` (``training_step``, logging, ``zero_grad``); backward time: from
    there to batch end (backward, optimizer step)."""
    plan = settings.plan(batch_size)
    built_at = bench_clock.clock()
    model = _classifier(settings)
    datamodule = _datamodule(settings, batch_size)
    timer = LightningTrainClock(plan, synchronizer(settings.device), built_at)
    with _quiet():
        trainer = _trainer(settings, timer, max_steps=plan.total, max_epochs=-1,
                           limit_val_batches=0)
        trainer.fit(model, datamodule=datamodule)
    return timer.result()


def eval_lightning(settings: Settings) -> EvalRun:
    """``Trainer.validate`` of our ``Classifier`` (its ``validation_step``: loss, accuracy
    metric, ``self.log``) over the plan's batches."""
    model = _classifier(settings)
    model.mean.copy_(torch.tensor(settings.data.norm.mean))
    model.std.copy_(torch.tensor(settings.data.norm.std))
    timer = LightningEvalClock(settings.eval_plan(), synchronizer(settings.device))
    loader = settings.eval_batches("NCHW", lambda batch: _to_device(batch, torch.device("cpu")))
    with _quiet():
        trainer = _trainer(settings, timer, limit_val_batches=None)
        trainer.validate(model, dataloaders=loader, verbose=False)
    return timer.result()


VARIANTS = {
    "plain": (train_plain, eval_plain, "hand-written loop: SeedCNN, Adam, nll_loss"),
    "lightning": (train_lightning, eval_lightning,
                  "lightning.Trainer with cnn.pt Classifier and DataModule"),
}
