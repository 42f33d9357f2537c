"""Mirror of lightning.pytorch.strategies.strategy: what runs a module's steps, its backward and its optimizer
update, on the device, in the precision, and the collectives across the processes (none here: see ``ddp.py``).

The steps run as Python by default, as Lightning's; with ``Trainer(compile=True)`` the training step is one
``mx.compile``\\ d function, ``mx.compile(step, inputs=state, outputs=state)`` with ``state = [model.state,
optimizer.state, mx.random.state, accumulated]`` around ``nn.value_and_grad(training_step)``, the average of the
gradients over the data-parallel ranks (:meth:`reduce_gradients`, an all-reduce traced into the graph), gradient
clipping and ``optimizer.update``; ``validation_step``/``test_step`` are compiled with ``inputs=[model.state,
mx.random.state]`` (``predict_step`` runs eagerly). ``self.log`` values of a step are captured and returned as
outputs of the compiled function, their metadata recorded at trace time per batch signature. ``batch_idx``,
``current_epoch`` and ``global_step`` are inputs of the compiled function (``mx.array`` scalars inside it), so
every step sees its own; any other python value the step reads is frozen at its trace. A trace that fails (python
control flow on array values, ``.item()``, ...) restores the state snapshot taken before it, warns once and
switches to eager mode for the rest of the run (:class:`~cnn.mx.lightning.utilities.compile.CompiledSteps`).

Eager, the loop's closure runs :meth:`training_step` (forward and backward: one MLX call) and :meth:`add_gradients`
(the backward hooks), inside ``LightningModule.optimizer_step`` whose ``optimizer.step`` runs :meth:`optimizer_step`
(``on_before_optimizer_step``, ``configure_gradient_clipping``, the update). Compiled, those hooks are not called.

Gradient accumulation (``accumulate > 1``): each batch's gradients of ``loss / accumulate`` are added to a sum
kept in the compiled state (``accumulated``); the stepping batch updates the weights with the sum and zeroes it.
One compiled function per (accumulate, step or not). The precision plugin decides the dtype of every step
(:mod:`cnn.mx.lightning.plugins.precision`): the module is cast for the step, the gradients arrive in float32, and
under "16-mixed" the loss is scaled and a step whose gradients are not finite is skipped, inside the graph.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Optional

from cnn.mx.lightning.core.optimizer import configure_optimizers
from cnn.mx.lightning.plugins.io.safetensors_io import SafetensorsCheckpointIO
from cnn.mx.lightning.plugins.precision.amp import all_finite
from cnn.mx.lightning.plugins.precision.precision import Precision
from cnn.mx.lightning.trainer.call import call_batch_hook, call_hooks, call_lightning_module_hook
from cnn.mx.lightning.utilities.compile import CompiledSteps, signature
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException
from cnn.mx.lightning.utilities.model_helpers import is_overridden
from cnn.mx.lightning.utilities.seed import set_rng
from cnn.mx.lightning.utilities.signature_utils import is_param_in_hook_signature

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map, tree_unflatten

# LightningModule hooks that run between backward and the optimizer update (see Strategy.setup_optimizers).
EAGER_HOOKS = ("optimizer_step", "optimizer_zero_grad", "configure_gradient_clipping")


def from_training_step_output(output: Any) -> tuple[Optional[mx.array], dict[str, Any]]:
    """Lightning's ``ClosureResult.from_training_step_output``: the loss and the other outputs of what
    ``training_step`` returned (an array, a dict with a ``"loss"`` key, or ``None``: the loss ``None``, the batch
    skipped); anything else is refused in Lightning's words. The loss must be a scalar (torch's backward refuses
    any other, in the words used here)."""
    loss, extra = None, {}
    if isinstance(output, Mapping):
        loss = output.get("loss")
        if loss is None:
            raise MisconfigurationException("In automatic_optimization, when `training_step` returns a dict, the "
                                            "'loss' key needs to be present")
        extra = {k: v for k, v in output.items() if k != "loss"}
    elif isinstance(output, mx.array):
        loss = output
    elif output is not None:
        raise MisconfigurationException("In automatic optimization, `training_step` must return a Tensor, a dict, "
                                        "or None (where the step will be skipped).")
    if loss is not None and (not isinstance(loss, mx.array) or loss.size != 1):
        shape = tuple(loss.shape) if isinstance(loss, mx.array) else type(loss).__name__
        raise RuntimeError(f"grad can be implicitly created only for scalar outputs: the loss `training_step` "
                           f"returned is {shape}")
    return loss, extra


@dataclass
class StepOutput:
    """One automatic training step: the loss, the ``self.log`` values and their metadata, the other outputs of a
    dict returned by ``training_step``, per-parameter finite-gradient flags (``detect_anomaly``), and, eager, the
    gradients of the batch not yet applied."""

    loss: Any
    logs: dict[str, Any]
    extra: dict[str, Any]
    metas: dict[str, Any]
    finite_grads: Any
    grads: Any = None


def call_training_step(model: Any, batch: Any, batch_idx: Any) -> Any:
    """``model.training_step(batch, batch_idx)``, or ``(batch)`` when its signature takes no ``batch_idx``, as
    Lightning's ``_build_training_step_kwargs`` passes it."""
    step = model.training_step
    if is_param_in_hook_signature(step, "batch_idx", min_args=2):
        return step(batch, batch_idx)
    return step(batch)


class Strategy:
    """Lightning's ``Strategy``: the module (``connect``), its optimizers and schedulers (``setup``), the dispatch of
    ``training_step``/``validation_step``/``test_step``/``predict_step``, ``backward`` and ``optimizer_step``, and
    the collectives (``reduce``, ``barrier``, ``broadcast``, ``all_gather``, ... each the identity here: one
    process). ``accelerator``: ``"auto"``, ``"cpu"`` or ``"gpu"``, the device :meth:`setup_environment` makes MLX's
    default."""

    def __init__(self, accelerator: str = "auto", checkpoint_io: Any = None,
                 precision_plugin: Optional[Precision] = None) -> None:
        self.accelerator = accelerator
        self.checkpoint_io = checkpoint_io if checkpoint_io is not None else SafetensorsCheckpointIO()
        self.precision_plugin = precision_plugin if precision_plugin is not None else Precision("32-true")
        self.optimizers: list[Any] = []
        self.lr_scheduler_configs: list[Any] = []
        self.compiled = CompiledSteps()
        self.accumulated: dict[str, Any] = {}  # "grads": the gradient sum of the batches since the last step
        self._lightning_module: Any = None
        self._last_metas: dict[str, Any] = {}  # the log metadata of the last forward pass
        self.eager_hooks: list[str] = []  # overridden hooks that keep the training step out of mx.compile

    # ------------------------------------------------------------------ the module, the device, the setup
    def connect(self, model: Any) -> None:
        """The module this strategy trains (Lightning's ``connect``)."""
        self._lightning_module = model

    @property
    def lightning_module(self) -> Any:
        return self._lightning_module

    @property
    def trainer(self) -> Any:
        return self._lightning_module.trainer

    @property
    def root_device(self) -> Any:
        """MLX's default device (its memory is unified: arrays have no device of their own)."""
        return mx.default_device()

    def setup_environment(self) -> None:
        """``mx.set_default_device`` for the accelerator: ``"auto"`` is the GPU when MLX has one."""
        if self.accelerator == "cpu":
            mx.set_default_device(mx.cpu)
        elif self.accelerator in ("gpu", "cuda", "mps"):
            if not mx.is_available(mx.gpu):
                raise ValueError(f"Trainer(accelerator={self.accelerator!r}) but MLX has no GPU here")
            mx.set_default_device(mx.gpu)
        else:
            mx.set_default_device(mx.gpu if mx.is_available(mx.gpu) else mx.cpu)

    def batch_to_device(self, batch: Any, device: Any = None, dataloader_idx: int = 0) -> Any:
        """Lightning's ``batch_to_device``: ``transfer_batch_to_device(batch, device, dataloader_idx)``, then
        ``on_after_batch_transfer(batch, dataloader_idx)``, of the datamodule where it overrides them, else of the
        module; the batch they return."""
        trainer = self.trainer
        batch = call_batch_hook(trainer, "transfer_batch_to_device", batch, device or self.root_device,
                                dataloader_idx)
        return call_batch_hook(trainer, "on_after_batch_transfer", batch, dataloader_idx)

    def model_to_device(self) -> None:
        """Nothing to move: MLX arrays live in unified memory and compute on the default device."""

    def setup(self, trainer: Any) -> None:
        """Lightning's ``Strategy.setup``, after the checkpoint's weights are in: the precision plugin set up
        (``64-true`` casts the weights); for ``fit`` the model on its device and ``configure_optimizers``."""
        self.precision_plugin.setup(self.lightning_module)
        if trainer.state.fn == "fit":
            self.model_to_device()
            self.setup_optimizers(trainer)

    def setup_optimizers(self, trainer: Any) -> None:
        """``configure_optimizers`` (``trainer.optimizers``, ``trainer.lr_scheduler_configs``). Under
        ``Trainer(compile=True)`` an overridden ``optimizer_step``, ``optimizer_zero_grad`` or
        ``configure_gradient_clipping`` (Python that runs between backward and the update) makes the training step
        run eagerly for the whole fit, told in one warning here; the evaluation steps stay compiled."""
        self.optimizers, self.lr_scheduler_configs = configure_optimizers(trainer)
        model = self.lightning_module
        self.eager_hooks = [hook for hook in EAGER_HOOKS if model.automatic_optimization and is_overridden(hook, model)]
        if trainer.compile and self.eager_hooks:
            warnings.warn(f"Trainer(compile=True): training_step runs eagerly, as LightningModule."
                          f"{self.eager_hooks[0]} is overridden (it runs between backward and the optimizer "
                          "update, which mx.compile fuses)", RuntimeWarning, stacklevel=2)

    def reset(self) -> None:
        """Forget the compiled steps, their metadata and the gradient sum (a new run)."""
        self.compiled.reset()
        self.accumulated = {}

    # ------------------------------------------------------------------ the collectives (one process: identities)
    def reduce(self, value: Any, group: Any = None, reduce_op: Optional[str] = "mean") -> Any: return value
    def barrier(self, name: Optional[str] = None) -> None: ...
    def broadcast(self, obj: Any, src: int = 0) -> Any: return obj
    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any: return data
    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool: return decision
    def all_sum(self, values: Any) -> list[float]: return [float(v) for v in values]
    def any_rank(self, flag: bool) -> bool: return bool(flag)

    def reduce_gradients(self, grads: Any) -> Any:
        """The gradients every process applies (DDP: the mean over the ranks)."""
        return grads

    def lost_peer(self, error: BaseException) -> bool:
        """Whether ``error`` is a collective failing because another rank is gone (killed, crashed)."""
        return False

    def on_exception(self, exception: BaseException) -> None:
        """Lightning's ``strategy.on_exception``."""

    def share_rank_zero_loggers(self) -> None:
        """Rank zero's logger versions on every rank (one process: nothing to share)."""

    def share_checkpoint_paths(self) -> None:
        """After ``fit``: rank zero's checkpoint paths on every rank (one process: nothing to share)."""

    def sync_epoch_results(self, results: Any) -> None:
        """Lightning's ``sync_dist``: the epoch aggregates reduced over the ranks (one process: as they are)."""

    def agree_should_stop(self) -> None:
        """``should_stop`` on every rank when set on one (one process: as it is)."""

    # ------------------------------------------------------------------ backward and the optimizer step
    def backward(self, module: nn.Module, loss_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Lightning's ``strategy.backward`` (``manual_backward``) for MLX, which has no tape: ``(value, grads)`` of
        ``nn.value_and_grad(module, loss_fn)(*args, **kwargs)`` (averaged over the ranks with several processes, as
        DDP's backward averages), then ``on_before_backward(loss)`` and ``on_after_backward`` on the callbacks and
        the module, ``loss`` being the value or its first item and ``trainer.gradients`` the gradients meanwhile.
        The hooks come after the computation (MLX computes value and gradients in one call), in Lightning's order."""
        trainer = self.trainer
        value, grads = nn.value_and_grad(module, loss_fn)(*args, **kwargs)
        grads = self.reduce_gradients(grads)
        call_hooks(trainer, "on_before_backward", value[0] if isinstance(value, (tuple, list)) else value)
        previous, trainer.gradients = trainer.gradients, grads
        try:
            call_hooks(trainer, "on_after_backward")
        finally:
            trainer.gradients = previous
        return value, grads

    def _clip(self, grads: Any) -> Any:
        val = self.trainer.gradient_clip_val
        if not val:
            return grads
        if self.trainer.gradient_clip_algorithm == "value":
            return tree_map(lambda g: mx.clip(g, -val, val), grads)
        return optim.clip_grad_norm(grads, val)[0]

    def _apply_gradients(self, optimizer: Any, grads: Any, step: bool = True) -> None:
        """Inside the compiled step: add ``grads`` to the accumulated sum; on ``step``, update the weights with the
        sum (clipped by the Trainer's flags) and start a new sum."""
        if "grads" in self.accumulated:
            grads = tree_map(mx.add, self.accumulated["grads"], grads)
        if not step:
            self.accumulated["grads"] = grads
            return
        if "grads" in self.accumulated:
            self.accumulated["grads"] = tree_map(mx.zeros_like, grads)
        self._update(optimizer, self._clip(grads), all_finite(grads) if self.precision_plugin.scaler else None)

    def _update(self, optimizer: Any, grads: Any, finite: Any) -> None:
        """MLX's update of the module; under "16-mixed" (``finite`` given) only if the gradients were finite, as
        ``GradScaler`` skips the step."""
        model, scaler = self.lightning_module, self.precision_plugin.scaler
        if scaler is None:
            optimizer.update(model, grads)
            return
        params, opt_state = model.trainable_parameters(), tree_map(lambda a: a, optimizer.state)  # update mutates
        optimizer.update(model, grads)
        keep = lambda new, old: mx.where(finite, new, old)  # noqa: E731
        model.update(tree_map(keep, model.trainable_parameters(), params))
        optimizer.state.update(tree_map(keep, dict(optimizer.state), opt_state))  # in place: the graph holds it
        scaler.advance(finite)

    def add_gradients(self, output: "StepOutput") -> None:
        """Lightning's backward under automatic optimization: MLX computed the gradients with the loss (in
        :meth:`training_step`); around adding them to the sum the next optimizer step applies,
        ``on_before_backward(loss)`` and ``on_after_backward`` with ``trainer.gradients`` holding them."""
        trainer = self.trainer
        call_hooks(trainer, "on_before_backward", output.loss)
        trainer.gradients = output.grads
        call_hooks(trainer, "on_after_backward")
        trainer.gradients = None
        if "grads" in self.accumulated:
            self.accumulated["grads"] = tree_map(mx.add, self.accumulated["grads"], output.grads)
        else:
            self.accumulated["grads"] = output.grads

    def clip_gradients(self, clip_val: float, algorithm: str) -> None:
        """Clip the gradients of the coming optimizer step (``trainer.gradients``) by norm or by value."""
        trainer = self.trainer
        if trainer.gradients is None:
            raise RuntimeError("clip_gradients() clips the gradients of the coming optimizer step: call it from "
                               "configure_gradient_clipping")
        if clip_val and trainer.gradients:
            trainer.gradients = tree_map(lambda g: mx.clip(g, -clip_val, clip_val), trainer.gradients) \
                if algorithm == "value" else optim.clip_grad_norm(trainer.gradients, clip_val)[0]

    def optimizer_step(self, optimizer: Any, closure: Callable[[], Any], model: Any = None, **kwargs: Any) -> Any:
        """Lightning's ``Strategy.optimizer_step`` (what ``LightningOptimizer.step(closure)`` runs): the closure
        (``training_step`` and its backward), then ``on_before_optimizer_step(optimizer)`` and
        ``configure_gradient_clipping`` with ``trainer.gradients`` the summed gradients, then MLX's update with
        them (as clipped). Returns the closure's loss."""
        trainer = self.trainer
        loss = closure()
        # none when every batch of the step returned None from training_step: torch steps with no .grad, no update
        grads = self.accumulated.pop("grads", None)
        if trainer.accumulate_grad_batches > 1 and grads is not None:  # the compiled step keeps the sum's shapes
            self.accumulated["grads"] = tree_map(mx.zeros_like, grads)
        finite = all_finite(grads) if self.precision_plugin.scaler and grads is not None else None
        trainer.gradients = {} if grads is None else grads
        try:
            call_hooks(trainer, "on_before_optimizer_step", optimizer)
            call_lightning_module_hook(trainer, "configure_gradient_clipping", optimizer,
                                       gradient_clip_val=trainer.gradient_clip_val,
                                       gradient_clip_algorithm=trainer.gradient_clip_algorithm)
            if grads is not None:
                self._update(optimizer, trainer.gradients, finite)
        finally:
            trainer.gradients = None
        return loss

    # ------------------------------------------------------------------ the steps
    def _forward_backward(self, batch: Any, batch_idx: Any, accumulate: int) -> tuple:
        """Loss, logged values, extra outputs and the float32 gradients of ``loss / accumulate`` (Lightning's
        normalisation), computed in the precision's dtype, loss-scaled under "16-mixed" and unscaled again."""
        model, lc, precision = self.lightning_module, self.trainer.logger_connector, self.precision_plugin
        scaler = precision.scaler
        factor = 1.0 / accumulate if scaler is None else scaler.state["scale"] / accumulate
        lc.capture = {}

        skipped = []  # training_step returned None (an eager step only: a trace cannot skip)

        def loss_fn(batch: Any, batch_idx: Any) -> tuple:
            with precision.autocast(model):
                out = call_training_step(model, batch, batch_idx)
            loss, extra = from_training_step_output(out)
            if loss is None:
                if self.compiled.traced_counters:
                    raise RuntimeError("training_step returned None, which a compiled step cannot skip")
                skipped.append(True)
                loss = mx.array(0.0)
            logs = {k: v for k, (_, v) in lc.capture.items()}  # logged values as aux outputs
            loss, logs, extra = precision.to_float32((loss, logs, extra))
            return loss.reshape(()) * factor, (loss.reshape(()), logs, extra)

        # the hook around the step (optimizer_step) is the current one again after it

        previous_fx, model.current_fx_name = model.current_fx_name, "training_step"
        try:
            (_, (loss, logs, extra)), grads = nn.value_and_grad(model, loss_fn)(batch, batch_idx)
        finally:
            model.current_fx_name = previous_fx
        self._last_metas = {k: m for k, (m, _) in lc.capture.items()}
        if skipped:
            return None, logs, extra, None
        if scaler is not None:
            grads = tree_map(lambda g: g / scaler.state["scale"], grads)
        grads = self.reduce_gradients(grads)
        return loss, logs, extra, grads

    def _finite_by_parameter(self, grads: Any) -> mx.array:
        """For ``detect_anomaly``: one flag per parameter (``tree_flatten`` order), its gradient is finite."""
        return mx.stack([mx.isfinite(g).all() for _, g in tree_flatten(grads)])

    def _counters(self) -> tuple[mx.array, mx.array]:
        """``current_epoch`` and ``global_step`` as array inputs of a compiled step, so a trace reads this step's
        values rather than freezing those of the step it was traced at."""
        loops = self.trainer.fit_loop
        return mx.array(loops.epoch_progress.current), mx.array(loops.epoch_loop.global_step)

    def _train_graph(self, accumulate: int, step: bool, batch: Any, batch_idx: Any, counters: tuple) -> tuple:
        loss, logs, extra, grads = self.compiled.traced(self._forward_backward, counters, batch, batch_idx,
                                                        accumulate)
        flags = self._finite_by_parameter(grads) if self.trainer.detect_anomaly else mx.array(True)
        self._apply_gradients(self.optimizers[0], grads, step)
        self.compiled.meta[self.compiled.sig] = self._last_metas
        return loss, logs, extra, flags

    def _eval_graph(self, hook: str, batch: Any, args: tuple, counters: Any = None) -> tuple:
        model, lc, precision = self.lightning_module, self.trainer.logger_connector, self.precision_plugin
        lc.capture = {}
        # the hook around the step (optimizer_step) is the current one again after it
        previous_fx, model.current_fx_name = model.current_fx_name, hook
        try:
            with precision.autocast(model):
                step_fn = getattr(model, hook)
                out = self.compiled.traced(step_fn, counters, batch, *args) if counters else step_fn(batch, *args)
        finally:
            model.current_fx_name = previous_fx
        self.compiled.meta[self.compiled.sig] = {k: m for k, (m, _) in lc.capture.items()}
        return precision.to_float32((out, {k: v for k, (_, v) in lc.capture.items()}))

    def _snapshot(self) -> Callable[[], None]:
        """What puts back the state a trace captures: a failed trace leaves tracer placeholders in it."""
        opt, scaler = self.optimizers[0] if self.optimizers else None, self.precision_plugin.scaler
        model = self.lightning_module
        params, key, accumulated = tree_flatten(model.parameters()), mx.random.state[0], dict(self.accumulated)
        opt_state = tree_map(lambda x: x, opt.state) if opt else None
        scaler_state = dict(scaler.state) if scaler else None

        def restore() -> None:
            model.update(tree_unflatten(params))
            if opt is not None:
                opt.state = opt_state
                opt.init(model.trainable_parameters())
            set_rng(key)
            self.accumulated.clear()
            self.accumulated.update(accumulated)
            if scaler is not None:
                scaler.state.update(scaler_state)
        return restore

    def _run_compiled(self, kind: str, build: Callable, *args: Any) -> Any:
        try:
            return self.compiled.run(kind, build, self._snapshot, *args)
        finally:
            self.trainer.logger_connector.capture = None

    @property
    def compiles_training_step(self) -> bool:
        """The training step runs as one compiled function: ``Trainer(compile=True)``, no trace failed, and no hook
        that must run between backward and the update is overridden (:attr:`eager_hooks`)."""
        return self.trainer.compile and not self.compiled.failed and not self.eager_hooks

    def training_step(self, batch: Any, batch_idx: int, accumulate: int = 1, step: bool = True) -> Any:
        """Under manual optimization the module's ``training_step`` and its output, as Lightning's. Under automatic
        optimization a :class:`StepOutput`: compiled (:attr:`compiles_training_step`), the whole step of the batch
        (forward, backward, the gradients added to those of the ``accumulate - 1`` batches before, with ``step``
        one optimizer update with the sum), or ``None`` when its trace failed; eager, forward and backward only
        (the gradients of ``loss / accumulate`` in ``grads``, for :meth:`add_gradients`)."""
        model = self.lightning_module
        if not model.automatic_optimization:
            return call_training_step(model, batch, batch_idx)
        kind = f"train/{accumulate}/{'step' if step else 'accumulate'}"
        self.compiled.sig = (kind,) + signature(batch)
        if accumulate > 1 and "grads" not in self.accumulated:  # the compiled step needs the sum's shapes upfront
            self.accumulated["grads"] = tree_map(mx.zeros_like, model.trainable_parameters())
        if not self.compiles_training_step:
            try:
                loss, logs, extra, grads = self._forward_backward(batch, batch_idx, accumulate)
            finally:
                self.trainer.logger_connector.capture = None
            flags = self._finite_by_parameter(grads) if self.trainer.detect_anomaly and grads is not None \
                else mx.array(True)
            return StepOutput(loss, logs, extra, self._last_metas, flags, grads)
        opt = self.optimizers[0]
        state = [model.state, opt.state, mx.random.state, self.accumulated]
        scaler = self.precision_plugin.scaler
        if scaler is not None:
            state.append(scaler.state)
        build = lambda: mx.compile(partial(self._train_graph, accumulate, step), inputs=state,  # noqa: E731
                                   outputs=state)
        result = self._run_compiled(kind, build, batch, mx.array(batch_idx), self._counters())
        if result is None:
            return None
        mx.eval(result, state)
        return StepOutput(*result[:3], self.compiled.meta[self.compiled.sig], result[3])

    def post_training_step(self, output: "StepOutput") -> None:
        """Lightning's ``post_training_step``: after an eager step, its outputs and the new state evaluated."""
        mx.eval(output.loss, output.logs, output.extra, output.finite_grads, self.lightning_module.state,
                [opt.state for opt in self.optimizers], self.accumulated)

    def _evaluation_step(self, hook: str, batch: Any, *args: Any) -> tuple:
        """Run ``hook`` (``validation_step``/``test_step``/``predict_step``) on ``batch`` and ``args`` (``batch_idx``
        and ``dataloader_idx`` as the step takes them); returns ``(output, logs, metadata)``. Compiled only in the
        common form ``step(batch, batch_idx)``: a ``dataloader_idx`` would be frozen into the trace."""
        model = self.lightning_module
        self.compiled.sig = (hook,) + signature(batch)
        result = None
        if self.trainer.compile and not self.compiled.failed and hook != "predict_step" and len(args) == 1:
            graph = lambda batch, batch_idx, counters: self._eval_graph(hook, batch, (batch_idx,), counters)  # noqa
            build = lambda: mx.compile(graph, inputs=[model.state, mx.random.state], outputs=[mx.random.state])  # noqa
            result = self._run_compiled(hook, build, batch, mx.array(args[0]), self._counters())
        if result is None:
            try:
                result = self._eval_graph(hook, batch, args)
            finally:
                self.trainer.logger_connector.capture = None
        mx.eval(result)
        return (*result, self.compiled.meta[self.compiled.sig])

    def validation_step(self, batch: Any, *args: Any) -> tuple:
        return self._evaluation_step("validation_step", batch, *args)

    def test_step(self, batch: Any, *args: Any) -> tuple:
        return self._evaluation_step("test_step", batch, *args)

    def predict_step(self, batch: Any, *args: Any) -> tuple:
        return self._evaluation_step("predict_step", batch, *args)
