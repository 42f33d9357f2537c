"""Mirror of lightning.pytorch.core.module: ``LightningModule`` for MLX, Lightning's module API (hooks,
``self.log``, hyper-parameters) on ``mlx.nn.Module``.

The aggregation rules behind ``self.log`` live in
:mod:`cnn.mx.lightning.trainer.connectors.logger_connector.result` (``ResultCollection``).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable, Mapping, Optional

from cnn.mx.lightning.core import saving
from cnn.mx.lightning.core.hooks import CheckpointHooks, DataHooks, ModelHooks
from cnn.mx.lightning.core.mixins.hparams_mixin import HyperparametersMixin
from cnn.mx.lightning.core.optimizer import lightning_optimizers
from cnn.mx.lightning.trainer.connectors.logger_connector.fx_validator import FxValidator
from cnn.mx.lightning.trainer.connectors.logger_connector.result import LogMeta
from cnn.mx.lightning.utilities import distributed as dist
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten


def check_loggable(name: str, value: Any) -> Any:
    """``value`` as ``self.log`` keeps it (a scalar ``mx.array`` or the number given), or Lightning's ``ValueError``
    for what cannot be logged: a nested dict, a dict, ``None``, a string, a list, an array of more than one
    element."""
    if isinstance(value, dict):
        if any(isinstance(v, dict) for v in value.values()):
            raise ValueError(f"`self.log({name}, {value})` was called, but nested dictionaries cannot be logged")
    if isinstance(value, (mx.array, np.ndarray, np.generic)):
        if value.size != 1:
            raise ValueError(f"`self.log({name}, {value})` was called, but the tensor must have a single element."
                             f" You can try doing `self.log({name}, {value}.mean())`")
        return value.reshape(())
    if isinstance(value, numbers.Number):
        return value
    raise ValueError(f"`self.log({name}, {value})` was called, but `{type(value).__name__}` values cannot be logged")


class LightningModule(ModelHooks, DataHooks, CheckpointHooks, HyperparametersMixin, nn.Module):
    """Base class for MLX models trained by :class:`cnn.mx.lightning.trainer.Trainer`; mirrors
    ``lightning.LightningModule``.

    Override ``training_step(batch, batch_idx) -> loss`` (scalar ``mx.array``, or a dict with a ``"loss"`` key),
    ``configure_optimizers() -> mlx.optimizers.Optimizer`` (or ``{"optimizer": opt, "lr_scheduler": {...}}``, see
    :class:`~cnn.mx.lightning.trainer.Trainer`), optionally ``validation_step`` / ``test_step`` /
    ``predict_step`` and any Lightning ``ModelHooks``. Call ``super().__init__()`` first in ``__init__``.

    By default (``Trainer(compile=False)``) every hook and step runs as plain Python, every time, as in Lightning.
    With ``Trainer(compile=True)`` ``training_step``/``validation_step``/``test_step`` are *traced once per input
    shape*: ``batch_idx``, ``self.current_epoch`` and ``self.global_step`` are inputs of the compiled function and
    arrive as ``mx.array`` scalars holding each step's value; python side effects and any other python value read
    inside the step run once, at the trace. ``self.log`` is supported there (the values are returned from the
    compiled function); python control flow on array values is not (the trainer then falls back to eager mode
    with a one-line warning).
    """

    CHECKPOINT_HYPER_PARAMS_KEY = "hyper_parameters"
    CHECKPOINT_HYPER_PARAMS_NAME = "hparams_name"
    CHECKPOINT_HYPER_PARAMS_TYPE = "hparams_type"

    def __init__(self) -> None:
        super().__init__()
        # object.__setattr__: nn.Module would store dict values (hparams) as parameter sub-trees.
        object.__setattr__(self, "_strict_loading", None)
        object.__setattr__(self, "_trainer", None)
        object.__setattr__(self, "_current_fx_name", None)
        object.__setattr__(self, "_buffer_names", set())
        object.__setattr__(self, "_automatic_optimization", True)
        object.__setattr__(self, "_lightning_optimizers", [])

    def __setattr__(self, name: str, value: Any) -> None:
        """``nn.Module``'s, except that a list, tuple or dict holding no ``mx.array`` and no module (an empty list
        for epoch-end outputs, Lightning's idiom; a config dict) is a plain attribute, as in torch: MLX would make
        it a sub-tree of the parameters, and the arrays appended to it later parameters. A container that holds
        a module or an array when assigned is a sub-tree, as in MLX (``self.layers = [nn.Linear(...), ...]``)."""
        if isinstance(value, (list, tuple, dict)) and not _holds_module_or_array(value) \
                or self._keeps_as_state(name, value):
            object.__setattr__(self, name, value)
            self.pop(name, None)
        else:
            super().__setattr__(name, value)

    def _keeps_as_state(self, name: str, value: Any) -> bool:
        """An array (or container of arrays, no module) newly assigned while a step or hook of the run runs
        (``self.out = loss`` in ``training_step``) is state, as a tensor attribute is in torch: the parameters are
        what ``__init__``, ``setup`` and ``configure_model`` made; an existing parameter reassigned stays one."""
        fx = vars(self).get("_current_fx_name")
        return fx is not None and fx not in ("setup", "configure_model") and name not in self \
            and isinstance(value, (mx.array, list, tuple, dict)) and not isinstance(value, nn.Module) \
            and not _holds_module(value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``self(x)`` runs ``forward`` (torch's ``Module.__call__``); a module may define ``__call__`` itself."""
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch's ``Module.zero_grad``, which the trainer calls before its loops as Lightning does: nothing, MLX's
        gradients are values returned by ``nn.value_and_grad``, never kept on the parameters."""

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

    @trainer.setter
    def trainer(self, trainer: Any) -> None:
        """As Lightning's: the child LightningModules (an ensemble's members) get the same trainer."""
        for _, child in tree_flatten(self.children(), is_leaf=nn.Module.is_module):
            if isinstance(child, LightningModule):
                child.trainer = trainer
        object.__setattr__(self, "_trainer", trainer)

    @property
    def current_fx_name(self) -> Optional[str]:
        """The hook or step running now (``None`` outside one): ``self.log`` takes its defaults from it."""
        return self._current_fx_name

    @current_fx_name.setter
    def current_fx_name(self, name: Optional[str]) -> None:
        object.__setattr__(self, "_current_fx_name", name)

    @property
    def current_epoch(self) -> int:
        """The trainer's epoch (an ``mx.array`` scalar inside a compiled step, where it is an input)."""
        return self._trainer.current_epoch if self._trainer else 0

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far, as Lightning counts them (an ``mx.array`` scalar inside a compiled step)."""
        return self._trainer.global_step if self._trainer else 0

    @property
    def logger(self) -> Any:
        return self._trainer.logger if self._trainer else None

    @property
    def loggers(self) -> list:
        return self._trainer.loggers if self._trainer else []

    @property
    def automatic_optimization(self) -> bool:
        """``True``: the trainer runs backward and the optimizer step. ``False`` (manual optimization, see
        :mod:`cnn.mx.lightning.loops.optimization.manual`): ``training_step`` computes its own gradients
        (``self.manual_backward(loss_fn, ...)``, or ``nn.value_and_grad`` without the hooks) and calls
        ``opt.update(model, grads)`` on ``self.optimizers()``."""
        return self._automatic_optimization

    @automatic_optimization.setter
    def automatic_optimization(self, automatic: bool) -> None:
        object.__setattr__(self, "_automatic_optimization", bool(automatic))

    @property
    def global_rank(self) -> int:
        return self._trainer.global_rank if self._trainer else 0

    @property
    def local_rank(self) -> int:
        return self._trainer.local_rank if self._trainer else 0

    def optimizers(self, use_pl_optimizer: bool = True) -> Any:
        """The optimizers ``configure_optimizers`` returned: the optimizer itself when there is one, else the list
        (Lightning's rule), each wrapped in a :class:`~cnn.mx.lightning.core.optimizer.LightningOptimizer` (the same
        wrappers on every call) whose ``update(model_or_submodule, grads)`` calls ``on_before_optimizer_step`` and
        counts the step; ``use_pl_optimizer=False``: the MLX optimizers themselves (their steps call no hook and,
        under manual optimization, do not count in ``global_step``, as in Lightning)."""
        opts = self.trainer.optimizers
        if use_pl_optimizer:
            opts = lightning_optimizers(self.trainer, self._lightning_optimizers)
            object.__setattr__(self, "_lightning_optimizers", opts)
        return opts[0] if len(opts) == 1 else list(opts)

    def manual_backward(self, loss_fn: Callable[..., Any], *args: Any, module: Optional[nn.Module] = None,
                        **kwargs: Any) -> tuple[Any, Any]:
        """Lightning's ``manual_backward(loss)`` for MLX, which has no tape to run backward on, so it takes the
        function: ``(value, grads)`` of ``nn.value_and_grad(module, loss_fn)(*args, **kwargs)``, the gradients being
        those of the loss (the value, or its first item) with respect to ``module``'s trainable parameters
        (``module`` defaults to this whole module; a sub-module for a GAN's generator). Lightning's hooks run around
        it: ``on_before_backward(loss)``, then ``on_after_backward`` (callbacks, then the module) with
        ``trainer.gradients`` holding the gradients. With several processes the gradients are averaged over the
        ranks, as DDP's backward does. Manual optimization only; step with ``opt.update(module, grads)``."""
        if self.automatic_optimization:
            raise RuntimeError("to use manual_backward, please disable automatic optimization: set model property "
                               "`automatic_optimization` as False")
        if not callable(loss_fn):
            raise TypeError("manual_backward(loss) with a computed loss cannot work in MLX, which keeps no autograd "
                            "tape to run backward on: pass the function that computes it, `loss, grads = "
                            "self.manual_backward(loss_fn, *args)`, then `opt.update(self, grads)` (see "
                            "docs/mlx-lightning.md, manual optimization)")
        return self.trainer.strategy.backward(self if module is None else module, loss_fn, *args, **kwargs)

    def lr_schedulers(self) -> Any:
        """The schedulers ``configure_optimizers`` returned (``None``, one, or a list): under manual optimization
        ``training_step`` calls their ``step()`` when it wants the rate to move, as with torch schedulers."""
        configs = self.trainer.lr_scheduler_configs
        return None if not configs else configs[0] if len(configs) == 1 else list(configs)

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print`` on rank zero only (Lightning's ``LightningModule.print``)."""
        if self._trainer is None or self._trainer.is_global_zero:
            print(*args, **kwargs)

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        """Lightning's ``all_gather``: every ``mx.array``/numpy array of ``data`` stacked over the ranks, shape
        ``(world_size, *shape)``, or unchanged with one process. A collective: call it on every rank, with the same
        shapes. ``sync_grads`` is accepted for the signature (MLX has no autograd tape to keep)."""
        if self._trainer is not None:
            return self._trainer.strategy.all_gather(data, group, sync_grads)
        return dist.all_gather(data, group if group is not None else dist.world())

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str, map_location: Any = None, hparams_file: Optional[str] = None,
                             strict: Optional[bool] = None, weights_only: Optional[bool] = None,
                             **kwargs: Any) -> "LightningModule":
        """Lightning's ``load_from_checkpoint``: the module built from the checkpoint's hyper-parameters
        (``kwargs`` override them) with its weights (``strict``); see
        :func:`cnn.mx.lightning.core.saving.load_from_checkpoint`. ``map_location`` and ``weights_only`` are
        accepted and unused (MLX's memory is unified; a safetensors file holds no code to run);
        ``checkpoint_io=`` reads files written with another format's names."""
        return saving.load_from_checkpoint(cls, checkpoint_path, hparams_file=hparams_file, strict=strict, **kwargs)

    @property
    def strict_loading(self) -> bool:
        """Lightning's: whether ``load_state_dict`` (and ``load_from_checkpoint``) require every key; default True."""
        return True if self._strict_loading is None else self._strict_loading

    @strict_loading.setter
    def strict_loading(self, strict: bool) -> None:
        object.__setattr__(self, "_strict_loading", strict)

    def loading_strictness(self, strict: Optional[bool]) -> bool:
        """Whether ``load_from_checkpoint(strict=...)`` loads strictly: ``strict`` or, when ``None``, this module's
        ``strict_loading``; both set and different is Lightning's ``ValueError``."""
        if self._strict_loading is not None and strict is not None and strict != self.strict_loading:
            raise ValueError(f"You set `.load_from_checkpoint(..., strict={strict!r})` which is in conflict with "
                             f"`{type(self).__name__}.strict_loading={self.strict_loading!r}. Please set the same "
                             "value for both of them.")
        return self.strict_loading if strict is None else strict

    def state_dict(self) -> dict[str, mx.array]:
        """torch's ``state_dict``: every array of the module by its dotted path (weights and buffers)."""
        return dict(tree_flatten(self.parameters()))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Any:
        """torch's ``load_state_dict``: the arrays of ``state_dict`` into the module. ``strict``: every key of the
        module present and no other (else ``CheckpointMismatchError``, a ``RuntimeError`` as torch's); not strict:
        the keys both have. A shape that differs is an error either way. Returns ``(missing_keys,
        unexpected_keys)`` as torch does."""
        return saving.load_state_dict(self, state_dict, strict)

    # -- logging ----------------------------------------------------------------------------------------------
    def log(self, name: str, value: Any, prog_bar: bool = False, logger: Optional[bool] = None,
            on_step: Optional[bool] = None, on_epoch: Optional[bool] = None, reduce_fx: str = "mean",
            enable_graph: bool = False, sync_dist: bool = False, sync_dist_group: Any = None,
            add_dataloader_idx: bool = True, batch_size: Optional[int] = None, metric_attribute: Optional[str] = None,
            rank_zero_only: bool = False) -> None:
        """Log a scalar with Lightning's semantics (see module docstring): a number or a one-element array, else
        Lightning's ``ValueError``; where Lightning's ``_FxValidator`` allows it. ``sync_dist=True``: the epoch
        aggregate is reduced over the data-parallel ranks (a mean weighted by batch size); step values stay per rank.
        Graph and group args are ignored."""
        value = check_loggable(name, value)
        if self._trainer is None:
            warnings.warn("You are trying to `self.log()` but the `self.trainer` reference is not registered on the"
                          " model yet. This is most likely because the model hasn't been passed to the `Trainer`",
                          stacklevel=2)
            return
        if self._trainer.state.fn == "predict":  # Lightning: no result collection to log into
            raise MisconfigurationException(
                "You are trying to `self.log()` but the loop's result collection is not registered yet. This is most"
                " likely because you are trying to log in a `predict` hook, but it doesn't support logging")
        fx = self._current_fx_name
        if fx is None:
            raise MisconfigurationException(
                "You are trying to `self.log()` but it is not managed by the `Trainer` control flow")
        on_step, on_epoch = FxValidator.check_logging_and_get_default_levels(fx, on_step, on_epoch)
        if add_dataloader_idx and "/dataloader_idx_" in name:
            raise MisconfigurationException(
                f"You called `self.log` with the key `{name}` but it should not contain information about"
                " `dataloader_idx` when `add_dataloader_idx=True`")
        if not on_step and not on_epoch:
            raise MisconfigurationException("`self.log(on_step=False, on_epoch=False)` is not useful.")
        if logger and self._trainer.logger is None:
            warnings.warn(f"You called `self.log({name!r}, ..., logger=True)` but have no logger configured. You can"
                          " enable one by doing `Trainer(logger=ALogger(...))`", stacklevel=2)
        if sync_dist:
            self._trainer.logger_connector.sync_dist_keys.add(f"{fx}.{name}")
        error = ("Only `self.log(..., reduce_fx={min,max,mean,sum})` are supported. If you need a custom reduction,"
                 f" please log a `torchmetrics.Metric` instance instead. Found: {reduce_fx}")
        if isinstance(reduce_fx, str):
            reduce_fx = {"avg": "mean"}.get(reduce_fx.lower(), reduce_fx.lower())
        else:  # Python's min/max/sum, mx.mean...: by name
            reduce_fx = getattr(reduce_fx, "__name__", "")
        if reduce_fx not in ("mean", "sum", "min", "max"):
            raise MisconfigurationException(error)
        meta = LogMeta(fx=fx, name=name, prog_bar=prog_bar, logger=True if logger is None else logger,
                       on_step=on_step, on_epoch=on_epoch, reduce_fx=reduce_fx,
                       batch_size=None if batch_size is None else int(batch_size),
                       add_dataloader_idx=add_dataloader_idx)
        self._trainer.logger_connector.log(meta, value)

    def log_dict(self, dictionary: dict, prog_bar: bool = False, logger: Optional[bool] = None,
                 on_step: Optional[bool] = None, on_epoch: Optional[bool] = None, reduce_fx: str = "mean",
                 enable_graph: bool = False, sync_dist: bool = False, sync_dist_group: Any = None,
                 add_dataloader_idx: bool = True, batch_size: Optional[int] = None,
                 rank_zero_only: bool = False) -> None:
        """``self.log`` for every item of ``dictionary``."""
        for k, v in dictionary.items():
            self.log(k, v, prog_bar=prog_bar, logger=logger, on_step=on_step, on_epoch=on_epoch,
                     reduce_fx=reduce_fx, sync_dist=sync_dist, batch_size=batch_size,
                     add_dataloader_idx=add_dataloader_idx)

    # -- steps ----------------------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: Any) -> Any:
        raise NotImplementedError("`training_step` must be implemented to be used with the Trainer")

    def validation_step(self, batch: Any, batch_idx: Any) -> Any:
        """Not overridden -> the trainer skips validation (Lightning's ``is_overridden`` check)."""

    def test_step(self, batch: Any, batch_idx: Any) -> Any:
        """Not overridden -> ``trainer.test`` raises."""

    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        """Default: ``self(batch)`` (``self(batch[0])`` for tuple batches); takes ``batch_idx`` and
        ``dataloader_idx`` too, as Lightning's."""
        batch = kwargs.get("batch", args[0] if args else None)
        return self(batch[0] if isinstance(batch, (tuple, list)) else batch)

    def configure_optimizers(self) -> Any:
        raise NotImplementedError("`configure_optimizers` must be implemented to be used with the Trainer")

    def configure_callbacks(self) -> Any:
        return []

    # -- the optimizer step (Lightning's LightningModule hooks around it) --------------------------------------
    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        """Lightning's ``optimizer_step``: called once per optimizer step under automatic optimization, with the
        :class:`~cnn.mx.lightning.core.optimizer.LightningOptimizer` and the closure that runs ``training_step`` and
        its backward; ``optimizer.step(closure=optimizer_closure)`` runs it, then ``on_before_optimizer_step``,
        ``configure_gradient_clipping`` and MLX's update. Override it to act around the step (a learning-rate
        warm-up: set ``optimizer.learning_rate`` after the step)."""
        optimizer.step(closure=optimizer_closure)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
        """Lightning's ``optimizer_zero_grad``, after ``on_before_zero_grad``, with the
        :class:`~cnn.mx.lightning.core.optimizer.LightningOptimizer`: nothing to zero in MLX, whose gradients are
        values, never accumulated in place."""
        optimizer.zero_grad()

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """Lightning's ``lr_scheduler_step``: one step of ``scheduler`` (the
        :class:`~cnn.mx.lightning.core.optimizer.LRSchedulerConfig` the trainer steps, as ``lr_schedulers()``
        returns it), when its interval and frequency say so; ``metric`` is ``None`` (no plateau schedulers)."""
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Optional[float] = None,
                                    gradient_clip_algorithm: Optional[str] = None) -> None:
        """Lightning's ``configure_gradient_clipping``: before each optimizer step, after
        ``on_before_optimizer_step``, with the Trainer's ``gradient_clip_val``/``gradient_clip_algorithm`` as given
        (``None`` when unset); the default clips by them with :meth:`clip_gradients`."""
        self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val,
                            gradient_clip_algorithm=gradient_clip_algorithm)

    def clip_gradients(self, optimizer: Any, gradient_clip_val: Optional[float] = None,
                       gradient_clip_algorithm: Optional[str] = None) -> None:
        """Lightning's ``clip_gradients`` of the gradients the coming optimizer step applies (``trainer.gradients``,
        from ``configure_gradient_clipping``): by norm (``optim.clip_grad_norm``) or by value; ``None`` takes the
        Trainer's flag, and a value that contradicts a Trainer flag is refused, as Lightning refuses it."""
        trainer = self.trainer
        if not self.automatic_optimization:
            raise ValueError("clip_gradients() clips the gradients of the automatic optimizer step; under manual "
                             "optimization clip those manual_backward returned: optim.clip_grad_norm(grads, max_norm)")
        if gradient_clip_val is None:
            gradient_clip_val = trainer.gradient_clip_val or 0.0
        elif trainer.gradient_clip_val is not None and trainer.gradient_clip_val != gradient_clip_val:
            raise MisconfigurationException(
                f"You have set `Trainer(gradient_clip_val={trainer.gradient_clip_val!r})` and have passed "
                f"`clip_gradients(gradient_clip_val={gradient_clip_val!r})`. Please use only one of them.")
        flag = trainer.gradient_clip_algorithm
        if gradient_clip_algorithm is None:
            gradient_clip_algorithm = flag or "norm"
        elif flag is not None and flag != gradient_clip_algorithm:
            raise MisconfigurationException(
                f"You have set `Trainer(gradient_clip_algorithm={flag!r})` and have passed "
                f"`clip_gradients(gradient_clip_algorithm={gradient_clip_algorithm!r}) Please use only one of them.")
        if gradient_clip_algorithm not in ("norm", "value"):
            raise MisconfigurationException(f"`gradient_clip_algorithm` {gradient_clip_algorithm!r} is invalid. "
                                            "Allowed algorithms: 'value', 'norm'.")
        trainer.strategy.clip_gradients(gradient_clip_val, gradient_clip_algorithm)


def _holds_module(value: Any) -> bool:
    """``value`` is, or holds (in lists, tuples, dicts, at any depth), an ``nn.Module``."""
    if isinstance(value, nn.Module):
        return True
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return any(_holds_module(v) for v in items)


def _holds_module_or_array(value: Any) -> bool:
    """``value`` (a list, tuple or dict, at any depth) holds an ``nn.Module`` or an ``mx.array``."""
    if isinstance(value, (nn.Module, mx.array)):
        return True
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return any(_holds_module_or_array(v) for v in items)
