"""``LightningModule`` for MLX: Lightning's module API (hooks, ``self.log``, hyper-parameters) on ``mlx.nn.Module``,
and :class:`StepRunner`, which executes a module's ``*_step`` methods compiled (``mx.compile``) or eagerly.

The aggregation rules behind ``self.log`` live in :mod:`cnn.mx.lightning.loggers` (``ResultCollection``).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from argparse import Namespace
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional, Union

from cnn.mx.lightning import distributed as dist
from cnn.mx.lightning.checkpoint import set_rng
from cnn.mx.lightning.loggers import LogMeta, default_log_levels
from cnn.mx.lightning.precision import all_finite

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map, tree_unflatten


class AttributeDict(dict):
    """``dict`` with attribute access, used for ``hparams`` (Lightning's ``AttributeDict``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(key) from e

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


class LightningModule(nn.Module):
    """Base class for MLX models trained by :class:`cnn.mx.lightning.trainer.Trainer`; mirrors
    ``lightning.LightningModule``.

    Override ``training_step(batch, batch_idx) -> loss`` (scalar ``mx.array``, or a dict with a ``"loss"`` key),
    ``configure_optimizers() -> mlx.optimizers.Optimizer`` (or ``{"optimizer": opt, "lr_scheduler": {...}}``, see
    :class:`~cnn.mx.lightning.trainer.Trainer`), optionally ``validation_step`` / ``test_step`` /
    ``predict_step`` and any Lightning ``ModelHooks``. Call ``super().__init__()`` first in ``__init__``.

    When the trainer compiles the step (``Trainer(compile=True)``) ``training_step``/``validation_step``/``test_step``
    are *traced once per input shape*: python side effects and python values read inside them (``self.current_epoch``
    ...) are frozen at trace time and ``batch_idx`` arrives as an ``mx.array`` scalar. ``self.log`` is supported there
    (the values are returned from the compiled function); data-dependent python control flow is not (the trainer
    then falls back to eager mode with a warning).
    """

    def __init__(self) -> None:
        super().__init__()
        # object.__setattr__: nn.Module would store dict values (hparams) as parameter sub-trees.
        object.__setattr__(self, "_trainer", None)
        object.__setattr__(self, "_hparams", AttributeDict())
        object.__setattr__(self, "_hparams_initial", AttributeDict())
        object.__setattr__(self, "_log_hyperparams", True)
        object.__setattr__(self, "_current_fx_name", None)
        object.__setattr__(self, "_buffer_names", set())

    def register_buffer(self, name: str, array: mx.array) -> None:
        """torch's buffer: an array saved and loaded with the weights but never trained. MLX has no
        buffers, so it is a frozen parameter; :class:`ModelSummary` leaves it out of the parameter
        counts, as Lightning's summary leaves out torch's buffers. Reassigning ``self.<name>`` later
        keeps it a buffer."""
        setattr(self, name, array)
        self.freeze(keys=[name], recurse=False)
        self._buffer_names.add(name)

    def unfreeze(self, *args: Any, **kwargs: Any) -> "LightningModule":
        """``nn.Module.unfreeze``, after which buffers stay frozen (torch's ``requires_grad_`` leaves
        buffers alone too)."""
        super().unfreeze(*args, **kwargs)
        if self._buffer_names:
            self.freeze(keys=sorted(self._buffer_names), recurse=False)
        return self

    @property
    def buffer_names(self) -> frozenset:
        """Names of the arrays registered with :meth:`register_buffer`."""
        return frozenset(self._buffer_names)

    # -- trainer-backed properties --------------------------------------------------------------------------
    @property
    def trainer(self) -> Any:
        if self._trainer is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a `Trainer`.")
        return self._trainer

    @property
    def current_epoch(self) -> int:
        return self._trainer.current_epoch if self._trainer else 0

    @property
    def global_step(self) -> int:
        return self._trainer.global_step if self._trainer else 0

    @property
    def logger(self) -> Any:
        return self._trainer.logger if self._trainer else None

    @property
    def loggers(self) -> list:
        return self._trainer.loggers if self._trainer else []

    @property
    def automatic_optimization(self) -> bool:
        return True

    @property
    def global_rank(self) -> int:
        return self._trainer.global_rank if self._trainer else 0

    @property
    def local_rank(self) -> int:
        return self._trainer.local_rank if self._trainer else 0

    def optimizers(self) -> Any:
        return self.trainer.optimizers[0]

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print`` on rank zero only (Lightning's ``LightningModule.print``)."""
        if self._trainer is None or self._trainer.is_global_zero:
            print(*args, **kwargs)

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        """Lightning's ``all_gather``: every ``mx.array``/numpy array of ``data`` stacked over the ranks, shape
        ``(world_size, *shape)``, or unchanged with one process. A collective: call it on every rank, with the same
        shapes. ``sync_grads`` is accepted for the signature (MLX has no autograd tape to keep)."""
        if group is None:
            group = self._trainer._group if self._trainer is not None else dist.world()
        return dist.all_gather(data, group)

    # -- hyper-parameters -----------------------------------------------------------------------------------
    @property
    def hparams(self) -> AttributeDict:
        return self._hparams

    @property
    def hparams_initial(self) -> AttributeDict:
        return AttributeDict(copy.deepcopy(dict(self._hparams_initial)))

    def save_hyperparameters(self, *args: Any, ignore: Optional[Union[str, list]] = None, frame: Any = None,
                             logger: bool = True) -> None:
        """Record ``__init__`` arguments into ``self.hparams`` (inspecting the caller's frame like Lightning).

        ``save_hyperparameters()`` takes every init argument (of all ``__init__`` frames of this object's class
        chain); ``save_hyperparameters("a", "b")`` only those; ``save_hyperparameters(dict_or_namespace)`` that
        mapping. ``ignore`` drops names. The result goes to ``hparams.yaml`` and into checkpoints.
        """
        object.__setattr__(self, "_log_hyperparams", logger)
        if len(args) == 1 and isinstance(args[0], (dict, Namespace)):
            params = dict(vars(args[0]) if isinstance(args[0], Namespace) else args[0])
        else:
            frame = frame or inspect.currentframe().f_back
            init_args: dict[str, Any] = {}
            chain = []
            while frame is not None and frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is self:
                chain.append(frame)
                frame = frame.f_back
            for fr in reversed(chain):  # base-class frames first so subclass values win
                info = inspect.getargvalues(fr)
                for name in info.args[1:]:
                    init_args[name] = info.locals[name]
                if info.keywords:
                    init_args.update(info.locals[info.keywords])
            params = {k: v for k, v in init_args.items() if not args or k in args}
        ignore = [ignore] if isinstance(ignore, str) else list(ignore or [])
        params = {k: v for k, v in params.items() if k not in ignore and not k.startswith("__")}
        self._hparams.update(params)
        object.__setattr__(self, "_hparams_initial", AttributeDict(copy.deepcopy(dict(self._hparams))))

    # -- logging ----------------------------------------------------------------------------------------------
    def log(self, name: str, value: Any, prog_bar: bool = False, logger: Optional[bool] = None,
            on_step: Optional[bool] = None, on_epoch: Optional[bool] = None, reduce_fx: str = "mean",
            enable_graph: bool = False, sync_dist: bool = False, sync_dist_group: Any = None,
            add_dataloader_idx: bool = True, batch_size: Optional[int] = None, metric_attribute: Optional[str] = None,
            rank_zero_only: bool = False) -> None:
        """Log a scalar with Lightning's semantics (see module docstring). ``sync_dist=True``: the epoch aggregate is
        reduced over the data-parallel ranks (a mean weighted by batch size); step values stay per rank. Graph and
        group args are ignored."""
        if self._trainer is None:
            return  # Lightning only warns when logging without a trainer
        fx = self._current_fx_name
        if sync_dist and hasattr(self._trainer, "_sync_dist_keys"):
            self._trainer._sync_dist_keys.add(f"{fx}.{name}")
        on_step, on_epoch = default_log_levels(fx, on_step, on_epoch)
        reduce_fx = {"avg": "mean"}.get(str(reduce_fx).lower(), str(reduce_fx).lower()) if isinstance(
            reduce_fx, str) else getattr(reduce_fx, "__name__", "mean")
        if reduce_fx not in ("mean", "sum", "min", "max"):
            raise ValueError(f"Only `self.log(..., reduce_fx={{min,max,mean,sum}})` are supported, got {reduce_fx}")
        meta = LogMeta(fx=fx, name=name, prog_bar=prog_bar, logger=True if logger is None else logger,
                       on_step=on_step, on_epoch=on_epoch, reduce_fx=reduce_fx,
                       batch_size=None if batch_size is None else int(batch_size))
        self._trainer._logger_connector.log(meta, value)

    def log_dict(self, dictionary: dict, prog_bar: bool = False, logger: Optional[bool] = None,
                 on_step: Optional[bool] = None, on_epoch: Optional[bool] = None, reduce_fx: str = "mean",
                 enable_graph: bool = False, sync_dist: bool = False, sync_dist_group: Any = None,
                 add_dataloader_idx: bool = True, batch_size: Optional[int] = None,
                 rank_zero_only: bool = False) -> None:
        """``self.log`` for every item of ``dictionary``."""
        for k, v in dictionary.items():
            self.log(k, v, prog_bar=prog_bar, logger=logger, on_step=on_step, on_epoch=on_epoch,
                     reduce_fx=reduce_fx, sync_dist=sync_dist, batch_size=batch_size)

    # -- steps ----------------------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: Any) -> Any:
        raise NotImplementedError("`training_step` must be implemented to be used with the Trainer")

    def validation_step(self, batch: Any, batch_idx: Any) -> Any:
        """Not overridden -> the trainer skips validation (Lightning's ``is_overridden`` check)."""

    def test_step(self, batch: Any, batch_idx: Any) -> Any:
        """Not overridden -> ``trainer.test`` raises."""

    def predict_step(self, batch: Any, batch_idx: Any) -> Any:
        """Default: ``self(batch)`` (``self(batch[0])`` for tuple batches)."""
        return self(batch[0] if isinstance(batch, (tuple, list)) else batch)

    def configure_optimizers(self) -> Any:
        raise NotImplementedError("`configure_optimizers` must be implemented to be used with the Trainer")

    def configure_callbacks(self) -> Any:
        return []

    # -- hooks (Lightning's ModelHooks / DataHooks / CheckpointHooks), all no-ops by default -----------------
    def prepare_data(self) -> None: ...
    def setup(self, stage: str) -> None: ...
    def teardown(self, stage: str) -> None: ...
    def on_fit_start(self) -> None: ...
    def on_fit_end(self) -> None: ...
    def on_train_start(self) -> None: ...
    def on_train_end(self) -> None: ...
    def on_validation_start(self) -> None: ...
    def on_validation_end(self) -> None: ...
    def on_test_start(self) -> None: ...
    def on_test_end(self) -> None: ...
    def on_predict_start(self) -> None: ...
    def on_predict_end(self) -> None: ...
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> Optional[int]: ...
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None: ...
    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_predict_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_train_epoch_start(self) -> None: ...
    def on_train_epoch_end(self) -> None: ...
    def on_validation_epoch_start(self) -> None: ...
    def on_validation_epoch_end(self) -> None: ...
    def on_test_epoch_start(self) -> None: ...
    def on_test_epoch_end(self) -> None: ...
    def on_predict_epoch_start(self) -> None: ...
    def on_predict_epoch_end(self) -> None: ...
    def on_before_zero_grad(self, optimizer: Any) -> None: ...
    def on_before_backward(self, loss: Any) -> None: ...
    def on_after_backward(self) -> None: ...
    def on_before_optimizer_step(self, optimizer: Any) -> None: ...
    def on_validation_model_zero_grad(self) -> None: ...
    def on_save_checkpoint(self, checkpoint: dict) -> None: ...
    def on_load_checkpoint(self, checkpoint: dict) -> None: ...

    def on_validation_model_eval(self) -> None:
        self.eval()

    def on_validation_model_train(self) -> None:
        self.train()

    def on_test_model_eval(self) -> None:
        self.eval()

    def on_test_model_train(self) -> None:
        self.train()

    def on_predict_model_eval(self) -> None:
        self.eval()


def is_overridden(name: str, module: Any) -> bool:
    """True when ``module``'s class overrides ``LightningModule.<name>`` (Lightning's ``is_overridden``)."""
    return getattr(type(module), name, None) is not getattr(LightningModule, name, None)


@dataclass
class LRSchedulerConfig:
    """``lr = scheduler(n)`` after the n-th scheduler step (``interval`` "epoch" or "step"), like a torch scheduler
    (stepped by the trainer where Lightning steps it: "epoch" after the last batch of an epoch, "step" per batch)."""

    scheduler: Callable[[int], Any]
    optimizer: Any
    interval: str = "epoch"
    frequency: int = 1
    name: Optional[str] = None
    last_epoch: int = 0  # number of scheduler steps taken (torch's ``last_epoch``)


def parse_optimizers(out: Any) -> tuple[Any, list[LRSchedulerConfig]]:
    """Accept what ``configure_optimizers`` may return: an optimizer, ``[optimizer]``, ``([optimizer], [fn])`` or
    ``{"optimizer": opt, "lr_scheduler": fn | {"scheduler": fn, "interval": ..., "frequency": ..., "name": ...}}``.
    One optimizer only; ``fn(n) -> lr``; the initial rate becomes ``fn(0)``."""
    sched: Any = None
    if isinstance(out, dict):
        opt, sched = out["optimizer"], out.get("lr_scheduler")
    elif isinstance(out, (list, tuple)) and len(out) == 2 and isinstance(out[0], (list, tuple)):
        opts, scheds = out
        if len(opts) != 1 or len(scheds) > 1:
            raise ValueError("the MLX trainer supports exactly one optimizer and at most one lr scheduler")
        opt, sched = opts[0], (scheds[0] if scheds else None)
    else:
        opt = out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out
    if not isinstance(opt, optim.Optimizer):
        raise ValueError(f"configure_optimizers() must return an mlx.optimizers.Optimizer, got {type(opt)}")
    if sched is None:
        return opt, []
    cfg = sched if isinstance(sched, dict) else {"scheduler": sched}
    if cfg.get("interval", "epoch") not in ("epoch", "step") or "monitor" in cfg:
        raise ValueError("lr_scheduler: only interval 'epoch'/'step' callables are supported (no plateau)")
    config = LRSchedulerConfig(cfg["scheduler"], opt, cfg.get("interval", "epoch"), cfg.get("frequency", 1),
                               cfg.get("name"))
    opt.learning_rate = float(config.scheduler(0))
    return opt, [config]


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
    metadata recorded at trace time per batch signature. A trace that fails (python control flow on array values,
    ``.item()``, ...) restores the state snapshot taken before it, warns once and switches to eager mode for the rest
    of the run.

    Eager training calls ``on_before_zero_grad``, ``on_before_backward(loss)``, ``on_after_backward`` and
    ``on_before_optimizer_step`` (callbacks, then module) between backward and update, Lightning's closure order;
    ``trainer.gradients`` holds the gradient tree meanwhile. In compiled mode these four hooks are not called.

    Gradient accumulation (``accumulate > 1``): each batch's gradients of ``loss / accumulate`` are added to a sum
    kept in the compiled state (``accumulated``); the stepping batch updates the weights with the sum and zeroes it.
    One compiled function per (accumulate, step or not). ``trainer.precision_plugin`` decides the dtype of every
    step (``cnn.mx.lightning.precision``): the module is cast for the step, the gradients arrive in float32, and
    under "16-mixed" the loss is scaled and a step whose gradients are not finite is skipped, inside the graph.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.reset()

    def reset(self) -> None:
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
        model, lc, precision = self.trainer.lightning_module, self.trainer._logger_connector, self._precision()
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

        model._current_fx_name = "training_step"
        try:
            (_, (loss, logs, extra)), grads = nn.value_and_grad(model, loss_fn)(batch, batch_idx)
        finally:
            model._current_fx_name = None
        if scaler is not None:
            grads = tree_map(lambda g: g / scaler.state["scale"], grads)
        group = getattr(self.trainer, "_group", None)
        if group is not None and group.size() > 1:  # DDP: the mean gradient of all ranks' batches
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

    def _train_graph(self, accumulate: int, step: bool, batch: Any, batch_idx: Any) -> tuple:
        loss, logs, extra, grads = self._forward_backward(batch, batch_idx, accumulate)
        flags = self._finite_by_parameter(grads) if self.trainer.detect_anomaly else mx.array(True)
        self._add_and_step(grads, step)
        self.meta[self._sig] = self._last_metas
        return loss, logs, extra, flags

    def _eval_graph(self, hook: str, batch: Any, batch_idx: Any) -> tuple:
        model, lc, precision = self.trainer.lightning_module, self.trainer._logger_connector, self._precision()
        lc.capture = {}
        model._current_fx_name = hook
        try:
            with precision.autocast(model):
                out = getattr(model, hook)(batch, batch_idx)
        finally:
            model._current_fx_name = None
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
            self.trainer._logger_connector.capture = None

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
            result = self._run_compiled(kind, build, batch, mx.array(batch_idx))
            if result is not None:
                mx.eval(result, state)
                return (*result, self.meta[self._sig])
        try:
            loss, logs, extra, grads = self._forward_backward(batch, batch_idx, accumulate)
        finally:
            trainer._logger_connector.capture = None
        trainer.gradients = grads
        if batch_idx % accumulate == 0:  # Lightning zeroes the gradients on an accumulation's first batch
            trainer._call_both("on_before_zero_grad", opt)
        trainer._call_both("on_before_backward", loss)
        trainer._call_both("on_after_backward")
        if step:
            trainer._call_both("on_before_optimizer_step", opt)
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
            result = self._run_compiled(hook, build, batch, mx.array(batch_idx))
        if result is None:
            try:
                result = self._eval_graph(hook, batch, batch_idx)
            finally:
                self.trainer._logger_connector.capture = None
        mx.eval(result)
        return (*result, self.meta[self._sig])
