"""Mirror of lightning.pytorch.loops.optimization.automatic: a module's ``*_step`` run compiled
(``mx.compile``) or eagerly, with backward and the optimizer update (Lightning's ``_AutomaticOptimization``)."""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Any, Callable

from cnn.mx.lightning.loops.progress import OptimizerProgress
from cnn.mx.lightning.plugins.precision.amp import all_finite
from cnn.mx.lightning.trainer.call import call_hooks
from cnn.mx.lightning.trainer.connectors.logger_connector.result import LogMeta
from cnn.mx.lightning.utilities.seed import set_rng

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map, tree_unflatten

from cnn.errors import NonFiniteGradientError, NonFiniteLossError


def _signature(batch: Any) -> tuple:
    """Shapes/dtypes of the batch: mx.compile traces once per signature, so per-trace metadata is keyed by it."""
    return tuple((tuple(a.shape), str(a.dtype)) if isinstance(a, mx.array) else repr(a)
                 for _, a in tree_flatten(batch))


class StepRunner:
    """Runs a module's ``training_step`` (with backward and optimizer update) and evaluation steps for the trainer.

    Compiled training (``Trainer(compile=True)``): ``mx.compile(step, inputs=state, outputs=state)`` with
    ``state = [model.state, optimizer.state, mx.random.state]`` around ``nn.value_and_grad(training_step)``, the
    average of the gradients over the data-parallel ranks (``nn.average_gradients``, an all-reduce traced into the
    graph), gradient clipping and ``optimizer.update``; the caller evaluates once per step.
    ``validation_step``/``test_step`` are compiled with ``inputs=[model.state, mx.random.state]`` (``predict_step``
    runs eagerly). ``self.log`` values of a step are captured and returned as outputs of the compiled function, their
    metadata recorded at trace time per batch signature. ``batch_idx``, ``current_epoch`` and ``global_step`` are
    inputs of the compiled function (``mx.array`` scalars inside it), so every step sees its own; any other python
    value the step reads is frozen at its trace. A trace that fails (python control flow on array values,
    ``.item()``, ...) restores the state snapshot taken before it, warns once and switches to eager mode for the rest
    of the run.

    Eager training calls ``on_before_zero_grad``, ``on_before_backward(loss)``, ``on_after_backward`` and
    ``on_before_optimizer_step`` (callbacks, then module) between backward and update, Lightning's closure order;
    ``trainer.gradients`` holds the gradient tree meanwhile. In compiled mode these four hooks are not called.

    Gradient accumulation (``accumulate > 1``): each batch's gradients of ``loss / accumulate`` are added to a sum
    kept in the compiled state (``accumulated``); the stepping batch updates the weights with the sum and zeroes it.
    One compiled function per (accumulate, step or not). ``trainer.precision_plugin`` decides the dtype of every
    step (``cnn.mx.lightning.plugins.precision``): the module is cast for the step, the gradients arrive in float32, and
    under "16-mixed" the loss is scaled and a step whose gradients are not finite is skipped, inside the graph.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.compiled: dict[str, Callable] = {}
        self.failed = False
        self.meta: dict[tuple, dict[str, LogMeta]] = {}
        self.accumulated: dict[str, Any] = {}
        self._sig: tuple = ()  # the batch signature of the step running now
        self._last_metas: dict[str, LogMeta] = {}  # the log metadata of the last forward pass
        self.traced_counters: dict[str, mx.array] = {}  # while tracing: current_epoch/global_step as inputs

    def reset(self) -> None:
        """Forget the compiled steps, their metadata and the gradient sum (a new run)."""
        self.compiled: dict[str, Callable] = {}
        self.failed = False
        self.meta: dict[tuple, dict[str, LogMeta]] = {}
        self.accumulated: dict[str, Any] = {}  # "grads": the gradient sum of the batches since the last step

    def _precision(self) -> Any:
        return self.trainer.precision_plugin

    def _clip(self, grads: Any) -> Any:
        val = self.trainer.gradient_clip_val
        if not val:
            return grads
        if self.trainer.gradient_clip_algorithm == "value":
            return tree_map(lambda g: mx.clip(g, -val, val), grads)
        return optim.clip_grad_norm(grads, val)[0]

    def _forward_backward(self, batch: Any, batch_idx: Any, accumulate: int) -> tuple:
        """Loss, logged values, extra outputs and the float32 gradients of ``loss / accumulate`` (Lightning's
        normalisation), computed in the precision's dtype, loss-scaled under "16-mixed" and unscaled again."""
        model, lc, precision = self.trainer.lightning_module, self.trainer.logger_connector, self._precision()
        scaler = precision.scaler
        factor = 1.0 / accumulate if scaler is None else scaler.state["scale"] / accumulate
        lc.capture = {}

        def loss_fn(batch: Any, batch_idx: Any) -> tuple:
            with precision.autocast(model):
                out = model.training_step(batch, batch_idx)
            loss, extra = (out["loss"], {k: v for k, v in out.items() if k != "loss"}) if isinstance(out, dict) \
                else (out, {})
            logs = {k: v for k, (_, v) in lc.capture.items()}  # logged values as aux outputs
            loss, logs, extra = precision.to_float32((loss, logs, extra))
            return loss * factor, (loss, logs, extra)

        model.current_fx_name = "training_step"
        try:
            (_, (loss, logs, extra)), grads = nn.value_and_grad(model, loss_fn)(batch, batch_idx)
        finally:
            model.current_fx_name = None
        if scaler is not None:
            grads = tree_map(lambda g: g / scaler.state["scale"], grads)
        group = self.trainer.group
        if group.size() > 1:  # DDP: the mean gradient of all ranks' batches
            grads = nn.average_gradients(grads, group=group)
        self._last_metas = {k: m for k, (m, _) in lc.capture.items()}
        return loss, logs, extra, grads

    def _finite_by_parameter(self, grads: Any) -> mx.array:
        """For ``detect_anomaly``: one flag per parameter (``tree_flatten`` order), its gradient is finite."""
        return mx.stack([mx.isfinite(g).all() for _, g in tree_flatten(grads)])

    def _add_and_step(self, grads: Any, step: bool) -> None:
        """Add ``grads`` to the accumulated sum; on ``step``, update the weights with the sum (clipped; under
        "16-mixed" only if it is finite, as ``GradScaler`` skips the step) and start a new sum."""
        if "grads" in self.accumulated:
            grads = tree_map(mx.add, self.accumulated["grads"], grads)
        if not step:
            self.accumulated["grads"] = grads
            return
        if "grads" in self.accumulated:
            self.accumulated["grads"] = tree_map(mx.zeros_like, grads)
        model, opt, scaler = self.trainer.lightning_module, self.trainer.optimizers[0], self._precision().scaler
        if scaler is None:
            opt.update(model, self._clip(grads))
            return
        finite = all_finite(grads)
        params, opt_state = model.trainable_parameters(), tree_map(lambda a: a, opt.state)  # update mutates in place
        opt.update(model, self._clip(grads))
        keep = lambda new, old: mx.where(finite, new, old)  # noqa: E731
        model.update(tree_map(keep, model.trainable_parameters(), params))
        opt.state.update(tree_map(keep, dict(opt.state), opt_state))  # in place: the compiled step holds this dict
        scaler.advance(finite)

    def _counters(self) -> tuple[mx.array, mx.array]:
        """``current_epoch`` and ``global_step`` as array inputs of a compiled step, so a trace reads this step's
        values rather than freezing those of the step it was traced at."""
        loops = self.trainer.fit_loop
        return mx.array(loops.epoch_progress.current), mx.array(loops.epoch_loop.global_step)

    def _traced(self, fn: Callable, counters: tuple, *args: Any) -> Any:
        self.traced_counters = {"current_epoch": counters[0], "global_step": counters[1]}
        try:
            return fn(*args)
        finally:
            self.traced_counters = {}

    def _train_graph(self, accumulate: int, step: bool, batch: Any, batch_idx: Any, counters: tuple) -> tuple:
        loss, logs, extra, grads = self._traced(self._forward_backward, counters, batch, batch_idx, accumulate)
        flags = self._finite_by_parameter(grads) if self.trainer.detect_anomaly else mx.array(True)
        self._add_and_step(grads, step)
        self.meta[self._sig] = self._last_metas
        return loss, logs, extra, flags

    def _eval_graph(self, hook: str, batch: Any, batch_idx: Any, counters: Any = None) -> tuple:
        model, lc, precision = self.trainer.lightning_module, self.trainer.logger_connector, self._precision()
        lc.capture = {}
        model.current_fx_name = hook
        try:
            with precision.autocast(model):
                step_fn = getattr(model, hook)
                out = self._traced(step_fn, counters, batch, batch_idx) if counters else step_fn(batch, batch_idx)
        finally:
            model.current_fx_name = None
        self.meta[self._sig] = {k: m for k, (m, _) in lc.capture.items()}
        return precision.to_float32((out, {k: v for k, (_, v) in lc.capture.items()}))

    def _snapshot(self) -> tuple:
        opt, scaler = self.trainer.optimizers[0] if self.trainer.optimizers else None, self._precision().scaler
        return (tree_flatten(self.trainer.lightning_module.parameters()),
                tree_map(lambda x: x, opt.state) if opt else None, mx.random.state[0], dict(self.accumulated),
                dict(scaler.state) if scaler else None)

    def _restore(self, snap: tuple) -> None:
        # A failed trace leaves tracer placeholders in the captured state: put the real arrays back.
        params, opt_state, key, accumulated, scaler_state = snap
        model = self.trainer.lightning_module
        model.update(tree_unflatten(params))
        if opt_state is not None:
            self.trainer.optimizers[0].state = opt_state
            self.trainer.optimizers[0].init(model.trainable_parameters())
        set_rng(key)
        self.accumulated.clear()
        self.accumulated.update(accumulated)
        if scaler_state is not None:
            self._precision().scaler.state.update(scaler_state)

    def _run_compiled(self, kind: str, build: Callable, *args: Any) -> Any:
        fn = self.compiled.get(kind)
        if fn is None:
            fn = self.compiled[kind] = build()
        try:
            if self._sig in self.meta:  # already traced for this signature
                return fn(*args)
            snap = self._snapshot()
            try:
                return fn(*args)
            except Exception as e:  # the trace failed
                self._restore(snap)
                self.failed = True
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                warnings.warn(f"mx.compile failed for {kind} ({type(e).__name__}: {first}); running eagerly instead",
                              RuntimeWarning, stacklevel=3)
                return None
        finally:
            self.trainer.logger_connector.capture = None

    def train(self, batch: Any, batch_idx: int, accumulate: int = 1, step: bool = True) -> tuple:
        """Forward and backward of one batch, adding its gradients to those of the ``accumulate - 1`` batches before;
        with ``step``, one optimizer step with the sum. Returns evaluated ``(loss, logged values, extra outputs,
        per-parameter finite-gradient flags (with ``detect_anomaly``), log metadata)``."""
        trainer = self.trainer
        model, opt = trainer.lightning_module, trainer.optimizers[0]
        kind = f"train/{accumulate}/{'step' if step else 'accumulate'}"
        self._sig = (kind,) + _signature(batch)
        if accumulate > 1 and "grads" not in self.accumulated:  # the compiled step needs the sum's shapes upfront
            self.accumulated["grads"] = tree_map(mx.zeros_like, model.trainable_parameters())
        if trainer.compile and not self.failed:
            state = [model.state, opt.state, mx.random.state, self.accumulated]
            scaler = self._precision().scaler
            if scaler is not None:
                state.append(scaler.state)
            build = lambda: mx.compile(partial(self._train_graph, accumulate, step), inputs=state,  # noqa: E731
                                       outputs=state)
            result = self._run_compiled(kind, build, batch, mx.array(batch_idx), self._counters())
            if result is not None:
                mx.eval(result, state)
                return (*result, self.meta[self._sig])
        try:
            loss, logs, extra, grads = self._forward_backward(batch, batch_idx, accumulate)
        finally:
            trainer.logger_connector.capture = None
        trainer.gradients = grads
        if batch_idx % accumulate == 0:  # Lightning zeroes the gradients on an accumulation's first batch
            call_hooks(trainer, "on_before_zero_grad", opt)
        call_hooks(trainer, "on_before_backward", loss)
        call_hooks(trainer, "on_after_backward")
        if step:
            call_hooks(trainer, "on_before_optimizer_step", opt)
        flags = self._finite_by_parameter(grads) if trainer.detect_anomaly else mx.array(True)
        self._add_and_step(grads, step)
        trainer.gradients = None
        mx.eval(loss, logs, extra, flags, model.state, opt.state, self.accumulated)
        return loss, logs, extra, flags, self._last_metas

    def evaluate(self, hook: str, batch: Any, batch_idx: int) -> tuple:
        """Run ``hook`` (``validation_step``/``test_step``/``predict_step``); returns ``(output, logs, metadata)``."""
        model = self.trainer.lightning_module
        self._sig = (hook,) + _signature(batch)
        result = None
        if self.trainer.compile and not self.failed and hook != "predict_step":
            build = lambda: mx.compile(partial(self._eval_graph, hook), inputs=[model.state, mx.random.state],  # noqa
                                       outputs=[mx.random.state])
            result = self._run_compiled(hook, build, batch, mx.array(batch_idx), self._counters())
        if result is None:
            try:
                result = self._eval_graph(hook, batch, batch_idx)
            finally:
                self.trainer.logger_connector.capture = None
        mx.eval(result)
        return (*result, self.meta[self._sig])


class AutomaticOptimization:
    """Lightning's ``_AutomaticOptimization``: one training step (forward, backward, optimizer update) through the
    trainer's :class:`StepRunner`, its loss checked; owns :class:`OptimizerProgress` (``optim_progress``).

    A non-finite loss raises :class:`~cnn.errors.NonFiniteLossError` (on every rank at the same batch); with
    ``detect_anomaly`` the first non-finite gradient raises :class:`~cnn.errors.NonFiniteGradientError` naming its
    parameter; both before any checkpoint of that step is written.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.optim_progress = OptimizerProgress()

    def reset(self) -> None:
        self.optim_progress = OptimizerProgress()

    def run(self, batch: Any, batch_idx: int, accumulating: bool) -> dict[str, Any]:
        """The step of ``batch``; ``accumulating``: only add its gradients (no optimizer step)."""
        trainer = self.trainer
        with trainer.profiler.profile("[Strategy]SingleDeviceStrategy.training_step"):
            loss, logs, extra, finite_grads, metas = trainer.step_runner.train(
                batch, batch_idx, trainer.accumulate_grad_batches, step=not accumulating)
        loss_value = loss.item()
        finite, where = math.isfinite(loss_value), ""
        if trainer.world_size > 1:  # one small all-reduce: every rank stops at the same batch, for a NaN or a signal
            signals = trainer.signal_connector
            bad, stop = trainer.accelerator_connector.all_sum([not finite, signals.received is not None])
            where = f" on rank {trainer.global_rank} (not finite on {int(bad)} of {trainer.world_size} ranks)"
            finite = finite and not bad
            signals.agree(bool(stop))
        if not finite:
            raise NonFiniteLossError(f"training loss is {loss_value}{where} at epoch {trainer.current_epoch}, "
                                     f"batch {batch_idx} (global step {self.optim_progress.steps}); "
                                     "stopped without writing a checkpoint")
        if trainer.detect_anomaly and not bool(finite_grads.all().item()):
            names = [name for name, _ in tree_flatten(trainer.lightning_module.trainable_parameters())]
            name = names[int(np.argmin(np.array(finite_grads)))]
            raise NonFiniteGradientError(f"detect_anomaly: the gradient of {name} is not finite at epoch "
                                         f"{trainer.current_epoch}, batch {batch_idx} (global step "
                                         f"{self.optim_progress.steps}); stopped without writing a checkpoint")
        if not accumulating:
            self.optim_progress.steps += 1
        trainer.logger_connector.feed(logs, metas)
        return {"loss": loss, **extra}
