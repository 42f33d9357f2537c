"""The MLX half of ``cli.py bench``: hand-written loops, eager and compiled, and our ``Trainer``.

``VARIANTS`` maps a name to ``(train, evaluate, description)`` as in ``bench_torch``. MLX is
lazy: nothing runs until ``mx.eval``, so every step evaluates the loss, the parameters, the
optimizer state and the RNG state before the clock may be read (``mx.eval`` blocks until the
device is done). Never imports torch.
"""

from __future__ import annotations

import sys

import cnn.mx  # noqa: F401 - first: gives MLX an optimised BLAS before mlx is imported
from cnn.mx import allocator, blas
from cnn.mx.datamodule import DataModule
from cnn.mx.lightning.callbacks import Callback
from cnn.mx.lightning.trainer import Trainer
from cnn.mx.model import SeedCNN
from cnn.mx.module import AdamL2, Classifier

import mlx.core as mx
import mlx.nn as nn

from cnn.schema import DEFAULT_DROPOUT
from cnn.tools import bench_clock
from cnn.tools.bench_clock import EvalClock, EvalRun, TrainClock, TrainRun
from cnn.tools.bench_plan import BenchError, Settings, endless


def check_device(device: str) -> None:
    """Raise ``BenchError`` if MLX cannot run on ``device`` ("cpu" or "gpu")."""
    if device == "gpu" and not mx.is_available(mx.gpu):
        raise BenchError("--device gpu, but MLX has no GPU here (mlx[cuda] on Linux)")


def describe(device: str) -> dict:
    """Device, MLX's device description and which BLAS its CPU backend uses."""
    _use(device)
    info = {k: v if isinstance(v, (str, int, float, bool)) else str(v)
            for k, v in mx.device_info().items()}  # JSON-safe
    return {"device_name": str(mx.default_device()), "device_info": info, "blas": blas.status(),
            "buffer_cache": allocator.status()}


def sync(*arrays) -> None:
    """Compute ``arrays`` and wait for the device (``mx.eval`` blocks until done)."""
    mx.eval(*[a for a in arrays if a is not None])


def _use(device: str) -> None:
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)


def _network(settings: Settings):
    """A fresh ``SeedCNN`` and the input scaling ``Classifier.__call__`` does."""
    spec = settings.spec
    _use(settings.device)
    mx.random.seed(settings.seed)  # dropout masks
    net = SeedCNN(spec.channels, spec.image_size, spec.num_classes,
                  settings.model.get("dropout", DEFAULT_DROPOUT), settings.seed)
    mean, std = mx.array(settings.data.norm.mean), mx.array(settings.data.norm.std)
    return net, lambda images: (images.astype(mx.float32) / 255.0 - mean) / std


def _loop_functions(net, optimizer, normalise, compiled: bool):
    """``step`` (value_and_grad + update), ``forward`` (loss alone) and the state they change.

    Compiled as mlx-examples do: ``mx.compile(step, inputs=state, outputs=state)`` with
    ``state = [model.state, optimizer.state, mx.random.state]`` (the RNG: dropout).
    """
    def loss_fn(model, images, labels):
        return nn.losses.nll_loss(model(normalise(images)), labels, reduction="mean")

    grad_fn = nn.value_and_grad(net, loss_fn)

    def step(images, labels):
        loss, grads = grad_fn(net, images, labels)
        optimizer.update(net, grads)
        return loss

    def forward(images, labels):
        return loss_fn(net, images, labels)

    state = [net.state, optimizer.state, mx.random.state]
    if compiled:
        step = mx.compile(step, inputs=state, outputs=state)
        forward = mx.compile(forward, inputs=[net.state, mx.random.state],
                             outputs=[mx.random.state])
    return step, forward, state


def _train_loop(settings: Settings, batch_size: int, compiled: bool) -> TrainRun:
    """Forward time: the loss alone, evaluated. Backward time: the whole evaluated step
    (value_and_grad + Adam update) minus that forward time, on the same batch."""
    plan = settings.plan(batch_size)
    batches = endless(settings.data.batches("train", batch_size, "NHWC", shuffle=True,
                                                  augment=settings.augment))
    built_at = bench_clock.clock()
    net, normalise = _network(settings)
    optimizer = AdamL2(settings.model["lr"], weight_decay=settings.model.get("weight_decay", 0.0))
    optimizer.init(net.trainable_parameters())  # the compiled step captures this state
    step, forward, state = _loop_functions(net, optimizer, normalise, compiled)
    timer = TrainClock(plan, sync, built_at, backward_includes_forward=True)
    net.train()
    for k in range(plan.total):
        batch = next(batches)
        images, labels = mx.array(batch[0]), mx.array(batch[1])
        timer.on_train_batch_start(None, net, batch, k)
        if k in plan.fwd_bwd:
            timer.on_before_backward(None, net, forward(images, labels))  # evaluates the loss
        loss = step(images, labels)
        mx.eval(loss, state)  # the step happens here, all of it
        timer.on_train_batch_end(None, net, loss, batch, k)
        if k == plan.warmup - 1:  # trace the forward alone too before any window (untimed)
            mx.eval(forward(images, labels))
    return timer.result()


def _eval_loop(settings: Settings, compiled: bool) -> EvalRun:
    """Eval mode (no dropout), no gradients: logits, argmax, hits, evaluated per batch."""
    net, normalise = _network(settings)
    net.eval()

    def hits(images, labels):
        return (net(normalise(images)).argmax(axis=1) == labels).sum()

    if compiled:
        hits = mx.compile(hits, inputs=[net.state])
    timer = EvalClock(settings.eval_plan(), sync)
    for i, batch in enumerate(settings.eval_batches("NHWC")):
        images, labels = mx.array(batch[0]), mx.array(batch[1])
        timer.on_validation_batch_start(None, net, batch, i)
        correct = hits(images, labels)
        mx.eval(correct)
        timer.on_validation_batch_end(None, net, correct, batch, i)
    return timer.result()


class MlxTrainClock(TrainClock, Callback):
    """``TrainClock`` as an MLX Trainer callback (Lightning's hook names)."""


class MlxEvalClock(EvalClock, Callback):
    """``EvalClock`` as an MLX Trainer callback."""


def _trainer(settings: Settings, callback: Callback, compiled: bool, **kwargs) -> Trainer:
    """A Trainer that does nothing but the loop: no logger, checkpoints, bar or summary."""
    return Trainer(accelerator=settings.device, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False,
                   enable_autolog_hparams=False, num_sanity_val_steps=0, compile=compiled,
                   callbacks=[callback], **kwargs)


def _classifier(settings: Settings) -> Classifier:
    spec = settings.spec
    _use(settings.device)
    mx.random.seed(settings.seed)
    return Classifier(**settings.model, in_channels=spec.channels, image_size=spec.image_size,
                      num_classes=spec.num_classes, classes=spec.classes, seed=settings.seed)


def _warn_if_eager(trainer: Trainer, compiled: bool) -> None:
    if compiled and not trainer.compiling:
        print("warning: mx.compile failed inside the MLX Trainer; trainer_compiled ran eagerly",
              file=sys.stderr)


def _trainer_train(settings: Settings, batch_size: int, compiled: bool) -> TrainRun:
    """``Trainer.fit`` of our ``Classifier`` on our ``DataModule``, ``max_steps`` = the plan,
    validation off. Eager: forward time is batch start to ``on_before_backward`` (where the
    clock evaluates the loss), backward the rest. Compiled: one graph, no such hook, so no
    forward/backward figures."""
    plan = settings.plan(batch_size)
    built_at = bench_clock.clock()
    model = _classifier(settings)
    datamodule = DataModule(**settings.datamodule_args(batch_size))
    datamodule.data = settings.data  # loaded once for every variant
    timer = MlxTrainClock(plan, sync, built_at)
    trainer = _trainer(settings, timer, compiled, max_steps=plan.total, max_epochs=-1,
                       limit_val_batches=0)
    trainer.fit(model, datamodule=datamodule)
    _warn_if_eager(trainer, compiled)
    return timer.result()


def _trainer_eval(settings: Settings, compiled: bool) -> EvalRun:
    """``Trainer.validate`` of our ``Classifier`` (loss, accuracy, ``self.log``)."""
    model = _classifier(settings)
    model.mean = mx.array(settings.data.norm.mean, dtype=mx.float32)
    model.std = mx.array(settings.data.norm.std, dtype=mx.float32)
    timer = MlxEvalClock(settings.eval_plan(), sync)
    trainer = _trainer(settings, timer, compiled, limit_val_batches=None)
    loader = settings.eval_batches("NHWC", lambda b: (mx.array(b[0]), mx.array(b[1])))
    trainer.validate(model, dataloaders=loader, verbose=False)
    _warn_if_eager(trainer, compiled)
    return timer.result()


VARIANTS = {
    "eager": (lambda s, b: _train_loop(s, b, False), lambda s: _eval_loop(s, False),
              "hand-written loop: SeedCNN, AdamL2, nll_loss, eager"),
    "compiled": (lambda s, b: _train_loop(s, b, True), lambda s: _eval_loop(s, True),
                 "hand-written loop, mx.compile(inputs=state, outputs=state)"),
    "trainer_eager": (lambda s, b: _trainer_train(s, b, False), lambda s: _trainer_eval(s, False),
                      "cnn.mx Trainer(compile=False) with Classifier and DataModule"),
    "trainer_compiled": (lambda s, b: _trainer_train(s, b, True),
                         lambda s: _trainer_eval(s, True),
                         "cnn.mx Trainer(compile=True) with Classifier and DataModule"),
}
