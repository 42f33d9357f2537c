"""``Trainer``: a PyTorch-Lightning-2.6-compatible training loop for MLX ``LightningModule``s.

Behaviour ported from the installed Lightning sources (``trainer/trainer.py::_run``, ``loops/fit_loop.py``,
``loops/training_epoch_loop.py``, ``loops/evaluation_loop.py``, ``trainer/connectors/logger_connector``):

* hook order (see :class:`Trainer`); validation runs inside the last training batch's ``on_advance_end``, i.e.
  *before* ``on_train_epoch_end``; monitoring callbacks (checkpoint / early stopping) get ``on_train_epoch_end``
  after the module;
* logger step axis: train step metrics are written when ``(_batches_that_stepped + 1) % log_every_n_steps == 0``
  (or ``should_stop``) at step ``_batches_that_stepped`` (= index of the batch); validation / epoch metrics at the
  then ``_batches_that_stepped`` (for end-of-epoch values: ``global_step - 1``) with an ``epoch`` scalar added;
  sanity-check validation logs nothing; evaluation ``on_step`` metrics at the evaluation batch counter.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar, Optional, Union

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.callbacks.early_stopping import EarlyStopping
from cnn.mx.lightning.callbacks.model_checkpoint import ModelCheckpoint
from cnn.mx.lightning.callbacks.model_summary import ModelSummary
from cnn.mx.lightning.callbacks.progress.tqdm_progress import TQDMProgressBar
from cnn.mx.lightning.callbacks.timer import Timer
from cnn.mx.lightning.core.module import is_overridden
from cnn.mx.lightning.core.optimizer import LRSchedulerConfig, parse_optimizers
from cnn.mx.lightning.loggers.logger import VersionedLogger
from cnn.mx.lightning.loggers.tensorboard import TensorBoardLogger
from cnn.mx.lightning.loops.optimization.automatic import StepRunner
from cnn.mx.lightning.loops.progress import FitProgress
from cnn.mx.lightning.plugins.io.safetensors_io import SafetensorsCheckpointIO
from cnn.mx.lightning.plugins.precision.precision import Precision
from cnn.mx.lightning.trainer.connectors import checkpoint_connector as ckpt_io
from cnn.mx.lightning.trainer.connectors.callback_connector import reorder_callbacks
from cnn.mx.lightning.trainer.connectors.logger_connector.logger_connector import LoggerConnector, print_results
from cnn.mx.lightning.trainer.setup import apply_debugging_flags, make_profiler
from cnn.mx.lightning.utilities import distributed as dist
from cnn.mx.lightning.utilities.rank_zero import RankZeroOnlyLogger
from cnn.mx.lightning.utilities.seed import set_rng

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from cnn.errors import NonFiniteGradientError, NonFiniteLossError, TrainingInterrupted

__all__ = ["Trainer"]


@dataclass
class TrainerState:
    fn: Optional[str] = None  # "fit" | "validate" | "test" | "predict"
    stage: Optional[str] = None  # "train" | "sanity_check" | "validate" | "test" | "predict"
    status: str = "initializing"  # "running" | "finished" | "interrupted"


def _parse_num_batches(length: int, limit: Union[int, float], what: str) -> int:
    # Lightning's data_connector._parse_num_batches for sized loaders; a whole float above 1 (a
    # YAML's ``3.0``) is a count, as in Lightning's _determine_batch_limits
    if isinstance(limit, float) and limit > 1.0 and limit.is_integer():
        limit = int(limit)
    if length == 0:
        return 0
    n = min(length, limit) if isinstance(limit, int) else int(length * limit)
    if n == 0 and isinstance(limit, float) and limit > 0.0:
        raise ValueError(f"limit_{what}_batches={limit} * {length} < 1; increase limit_{what}_batches")
    return n


def _to_mx(batch: Any) -> Any:
    if isinstance(batch, np.ndarray):
        return mx.array(batch)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_mx(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_mx(v) for k, v in batch.items()}
    return batch


def _checkpoint_io(plugins: Any) -> Any:
    """The checkpoint IO among Lightning-style ``plugins``; the default file format when none."""
    given = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    if any(not (hasattr(p, "save_checkpoint") and hasattr(p, "load_checkpoint")) for p in given) or len(given) > 1:
        raise ValueError(f"Trainer(plugins={plugins!r}) is not supported by the MLX trainer "
                         "(supported: None or one checkpoint IO)")
    return given[0] if given else SafetensorsCheckpointIO()


def _is_limit_reached(current: int, maximum: Optional[int]) -> bool:
    return maximum is not None and maximum != -1 and current >= maximum


class Trainer:
    """Train / evaluate an MLX :class:`~cnn.mx.lightning.core.module.LightningModule` with Lightning's ``Trainer`` API.

    Args:
        accelerator: ``"auto"`` (GPU when MLX has one, else CPU), ``"cpu"`` or ``"gpu"`` -> ``mx.set_default_device``.
        strategy: ``"auto"`` or ``"ddp"``: both train data-parallel over every process ``mlx.launch`` started (one
            process per device; see :mod:`cnn.mx.lightning.utilities.distributed`), and alone when it started none.
        devices: one device per process (``1``, ``"auto"``, ``-1``, ``[0]``); more devices means more processes.
        num_nodes: only ``1`` (the hosts of a multi-host run come from ``mlx.launch``'s host file).
        precision: ``"32-true"``; ``"bf16-mixed"``/``"16-mixed"``: steps compute in bfloat16/float16 over float32
            master weights and optimizer state (``"16-mixed"`` with dynamic loss scaling); ``"64-true"``: float64, on
            the CPU only (see :mod:`cnn.mx.lightning.plugins.precision`).
        logger: ``True``/``None`` -> :class:`TensorBoardLogger` in ``default_root_dir`` (hp_metric off); ``False``
            -> no logging; or a logger / list of loggers.
        callbacks: extra :class:`Callback`\\ s; checkpoint callbacks are moved last (Lightning's order).
        fast_dev_run: ``True`` or N: N (1) batches of each loop, one epoch, no sanity check, a logger that writes
            nothing, no checkpoints but Lightning's ``save_last`` at the end
            (see :mod:`cnn.mx.lightning.trainer.setup`).
        max_epochs: stop after this many epochs; ``None`` -> 1000 (or unlimited if ``max_steps`` is set); -1 unlimited.
        min_epochs: ``should_stop`` is ignored until this many epochs ran.
        max_steps: stop after this many optimizer steps (-1: unlimited).
        min_steps: ``should_stop`` is ignored until this many steps ran.
        max_time: stop training after this long (``"DD:HH:MM:SS"``, ``timedelta`` or dict): adds a :class:`Timer`
            checked after every batch, unless one is given.
        limit_train_batches: training batches per epoch: int = count, float = fraction of the loader (None: 1.0).
        limit_val_batches: validation batches per run: int = count, float = fraction (None: 1.0; 0 disables).
        limit_test_batches: test batches: int = count, float = fraction (None: 1.0).
        limit_predict_batches: predict batches: int = count, float = fraction (None: 1.0).
        overfit_batches: train on the same first N batches (int) or fraction of the batches every epoch, unshuffled
            (the DataModule reads ``trainer.overfit_batches``), and validate on N validation batches.
        val_check_interval: ``None``/``1.0`` = once per epoch; float = fraction of an epoch; int = every n batches.
        check_val_every_n_epoch: validate every n-th epoch (``None``: by ``val_check_interval`` across epochs).
        num_sanity_val_steps: validation batches run (and not logged) before training; -1 = all.
        log_every_n_steps: write train step metrics every n batches (Lightning's rule, see module docstring).
        enable_checkpointing: add a default :class:`ModelCheckpoint` if none is given.
        enable_progress_bar: add a default :class:`TQDMProgressBar` if none is given.
        enable_model_summary: print a parameter summary at ``on_fit_start``.
        accumulate_grad_batches: sum the gradients of ``loss / N`` over N batches (inside the compiled step), then one
            optimizer step; the last batch of an epoch always steps. ``global_step``, the logger's step axis and
            ``"step"`` schedulers advance per optimizer step, as in Lightning.
        gradient_clip_val: clip gradients (``None``/0: off).
        gradient_clip_algorithm: ``"norm"`` (global L2 norm, ``optim.clip_grad_norm``) or ``"value"``.
        deterministic: accepted; MLX's CPU kernels are deterministic, determinism across resumes comes from the
            checkpointed RNG key and ``set_epoch``-driven data order.
        benchmark: accepted; ``True`` prints a one-line note that MLX has no kernel autotuner.
        inference_mode: accepted, no effect (evaluation never builds gradients in MLX).
        use_distributed_sampler: accepted, no effect (the DataModule shards by ``global_rank``/``world_size``).
        profiler: ``None`` or ``"simple"``: at the end of each run, a table of the time per hook, data fetch, step,
            batch and epoch (:class:`~cnn.mx.lightning.profilers.SimpleProfiler`).
        detect_anomaly: check every parameter's gradient after each backward pass; the first non-finite one stops
            ``fit`` with :class:`~cnn.errors.NonFiniteGradientError` naming the parameter, no checkpoint written.
        barebones: only ``False``.
        plugins: ``None`` or a checkpoint IO (alone or in a list): an object with ``save_checkpoint(checkpoint,
            path)`` and ``load_checkpoint(path)``, as :class:`SafetensorsCheckpointIO`, which is the default.
        sync_batchnorm: only ``False``.
        reload_dataloaders_every_n_epochs: only ``0``.
        default_root_dir: root for logs and checkpoints (default: cwd).
        enable_autolog_hparams: log ``hparams`` (``hparams.yaml``) at the start of every run.
        compile: ``mx.compile`` the training step (forward, backward, clipping, optimizer update) with explicit
            state ``[model.state, optimizer.state, mx.random.state]``, and the evaluation steps; falls back to eager
            mode (one-line warning) when tracing fails.

    ``configure_optimizers()`` may return an ``mlx.optimizers.Optimizer`` (its learning rate may be an MLX schedule
    of the step), ``{"optimizer": opt, "lr_scheduler": fn | {"scheduler": fn, "interval": "epoch"|"step",
    "frequency": 1, "name": None}}`` or ``([opt], [fn])`` where ``fn(n) -> lr`` gives the rate after ``n`` scheduler
    steps (stepped like Lightning: "epoch" after the last batch of each epoch, "step" after each batch).

    Hook order (module hook after the callbacks' unless noted), as in Lightning 2.6:
    ``fit``: prepare_data, setup(stage), [on_load_checkpoint, load_state_dict], configure_optimizers, on_fit_start,
    on_sanity_check_start, <validation loop>, on_sanity_check_end, on_train_start, per epoch: on_train_epoch_start,
    per batch: on_train_batch_start, training_step, [on_before_zero_grad, on_before_backward, on_after_backward,
    on_before_optimizer_step -- eager mode only], on_train_batch_end, [after the last batch:
    on_validation_model_zero_grad (module), <validation loop>], on_train_epoch_end (callbacks, module, then
    checkpoint/early-stopping callbacks); on_train_end, on_fit_end, teardown(stage). Validation loop:
    on_validation_model_eval (module), on_validation_start, on_validation_epoch_start, per batch:
    on_validation_batch_start, validation_step, on_validation_batch_end; on_validation_epoch_end,
    on_validation_end, on_validation_model_train (module). ``test``/``predict`` alike with their names. Checkpoint
    saving calls every callback's ``state_dict``, then ``on_save_checkpoint`` (callbacks, module). Any exception
    calls ``on_exception`` on the callbacks and finalizes loggers with "failed".

    **Compiled mode**: backward and the optimizer step happen inside one compiled graph, so ``on_before_zero_grad``,
    ``on_before_backward``, ``on_after_backward`` and ``on_before_optimizer_step`` are *not called* (they are, in
    Lightning's order, with ``compile=False``). ``training_step`` is traced once per batch shape (see
    :class:`~cnn.mx.lightning.core.module.LightningModule`). ``on_train_batch_start`` returning -1 is not supported.

    **Data parallel** (see :mod:`cnn.mx.lightning.utilities.distributed`): ``world_size``/``global_rank`` come from
    ``mx.distributed.init()`` (a group of one unless started by ``mlx.launch``), and the DataModule shards by them
    (``datamodule.trainer`` is set before its ``setup``, as in Lightning). As Lightning's DDP: ``fit`` starts every
    rank from rank zero's weights, gradients are averaged over the ranks (``nn.average_gradients``, inside the
    compiled step), epoch aggregates of values logged with ``sync_dist=True`` are reduced over the ranks (means
    weighted by batch size), loggers write and ``ModelCheckpoint``, the progress bar and the model summary act on
    rank zero only (the others share rank zero's ``version_N``, and learn its checkpoint paths when ``fit`` ends).
    A NaN loss, a signal and ``should_stop`` (checked after each validation and epoch) stop every rank at the same
    batch.

    Signals: during ``fit`` SIGINT/SIGTERM stop training at the next batch boundary, ``ModelCheckpoint`` writes a
    resumable ``last`` checkpoint from ``on_exception``, loggers are finalized and :class:`TrainingInterrupted`
    (``SystemExit(128 + signum)``) is raised; a second Ctrl-C interrupts immediately. A non-finite training loss
    raises :class:`NonFiniteLossError` (after ``on_exception``) before any checkpoint of that step is written.
    """

    UNSUPPORTED: ClassVar[dict[str, tuple]] = {
        "strategy": ("auto", "ddp"), "num_nodes": (1,), "barebones": (False,), "sync_batchnorm": (False,),
        "reload_dataloaders_every_n_epochs": (0,), "devices": (1, "1", "auto", -1, [0], (0,)),
        "gradient_clip_algorithm": (None, "norm", "value"), "accelerator": ("auto", "cpu", "gpu", "cuda", "mps"),
    }

    def __init__(
        self,
        *,
        accelerator: str = "auto",
        strategy: str = "auto",
        devices: Union[int, str, list[int]] = "auto",
        num_nodes: int = 1,
        precision: Union[str, int] = "32-true",
        logger: Optional[Union[bool, VersionedLogger, list[VersionedLogger]]] = None,
        callbacks: Optional[Union[list[Callback], Callback]] = None,
        fast_dev_run: Union[int, bool] = False,
        max_epochs: Optional[int] = None,
        min_epochs: Optional[int] = None,
        max_steps: int = -1,
        min_steps: Optional[int] = None,
        max_time: Optional[Union[str, dict[str, int]]] = None,
        limit_train_batches: Optional[Union[int, float]] = None,
        limit_val_batches: Optional[Union[int, float]] = None,
        limit_test_batches: Optional[Union[int, float]] = None,
        limit_predict_batches: Optional[Union[int, float]] = None,
        overfit_batches: Union[int, float] = 0.0,
        val_check_interval: Optional[Union[int, float]] = None,
        check_val_every_n_epoch: Optional[int] = 1,
        num_sanity_val_steps: Optional[int] = 2,
        log_every_n_steps: Optional[int] = 50,
        enable_checkpointing: Optional[bool] = True,
        enable_progress_bar: Optional[bool] = True,
        enable_model_summary: Optional[bool] = True,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: Optional[Union[int, float]] = None,
        gradient_clip_algorithm: Optional[str] = None,
        deterministic: Optional[Union[bool, str]] = None,
        benchmark: Optional[bool] = None,
        inference_mode: bool = True,
        use_distributed_sampler: bool = True,
        profiler: Optional[str] = None,
        detect_anomaly: bool = False,
        barebones: bool = False,
        plugins: Optional[Any] = None,
        sync_batchnorm: bool = False,
        reload_dataloaders_every_n_epochs: int = 0,
        default_root_dir: Optional[str] = None,
        enable_autolog_hparams: bool = True,
        compile: bool = True,
    ) -> None:
        given = dict(locals())
        for name, allowed in self.UNSUPPORTED.items():
            value = given[name]
            # bools only match bools (devices=True is not devices=1), 0 matches False for fast_dev_run
            if not any(value == a and (type(value) is type(a) or not isinstance(value, bool)) for a in allowed):
                hint = ("; for data parallelism start one process per device with `mlx.launch -n N`"
                        if name in ("devices", "num_nodes", "strategy") else "")
                raise ValueError(f"Trainer({name}={value!r}) is not supported by the MLX trainer "
                                 f"(supported: {', '.join(map(repr, allowed))}){hint}")
        if max_epochs is not None and max_epochs < -1:
            raise ValueError(f"`max_epochs` must be a non-negative integer or -1. You passed in {max_epochs}.")
        if max_steps < -1:
            raise ValueError(f"`max_steps` must be a non-negative integer or -1. You passed in {max_steps}.")
        self.accelerator = accelerator
        # Every process mlx.launch started (a group of one otherwise); Lightning's rank attributes.
        self._group = dist.world()
        self.world_size, self.global_rank = self._group.size(), self._group.rank()
        self.local_rank, self.node_rank, self.num_nodes = 0, 0, 1  # MLX gives no per-host numbering
        self._sync_dist_keys: set[str] = set()  # "fx.name" of values logged with sync_dist=True
        self._agreed_signal: Optional[int] = None
        self.default_root_dir = os.fspath(default_root_dir) if default_root_dir else os.getcwd()
        self.max_epochs = (1000 if max_steps == -1 else -1) if max_epochs is None else max_epochs
        self.min_epochs = (1 if min_steps else 0) if min_epochs is None else min_epochs
        self.max_steps, self.min_steps = max_steps, min_steps
        self.limit_train_batches = 1.0 if limit_train_batches is None else limit_train_batches
        self.limit_val_batches = 1.0 if limit_val_batches is None else limit_val_batches
        self.limit_test_batches = 1.0 if limit_test_batches is None else limit_test_batches
        self.limit_predict_batches = 1.0 if limit_predict_batches is None else limit_predict_batches
        self.val_check_interval = 1.0 if val_check_interval is None else val_check_interval
        self.check_val_every_n_epoch = check_val_every_n_epoch
        sanity = 2 if num_sanity_val_steps is None else num_sanity_val_steps
        self.num_sanity_val_steps = math.inf if sanity == -1 else sanity
        self.log_every_n_steps = 50 if log_every_n_steps is None else log_every_n_steps
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm or "norm"
        self.enable_autolog_hparams = enable_autolog_hparams
        self.compile = compile
        self.checkpoint_io = _checkpoint_io(plugins)
        if isinstance(accumulate_grad_batches, bool) or not isinstance(accumulate_grad_batches, int) \
                or accumulate_grad_batches < 1:
            raise ValueError(f"`accumulate_grad_batches` must be a positive integer, got {accumulate_grad_batches!r}")
        self.accumulate_grad_batches = accumulate_grad_batches
        self.precision_plugin = Precision(precision)
        self.precision = self.precision_plugin.name
        self.detect_anomaly = bool(detect_anomaly)
        self.profiler = make_profiler(profiler)
        if benchmark and self.is_global_zero:
            print("note: Trainer(benchmark=True) has no effect with MLX, which has no kernel autotuner",
                  file=sys.stderr)

        if logger is None or logger is True:
            self.loggers = [TensorBoardLogger(save_dir=self.default_root_dir, default_hp_metric=False)]
        elif logger is False:
            self.loggers = []
        else:
            self.loggers = list(logger) if isinstance(logger, (list, tuple)) else [logger]

        cbs = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        if max_time is not None and not any(isinstance(c, Timer) for c in cbs):
            cbs.append(Timer(duration=max_time, interval="step"))
        if any(isinstance(c, ModelCheckpoint) for c in cbs) and enable_checkpointing is False:
            raise ValueError("Trainer(enable_checkpointing=False) but a ModelCheckpoint was passed in callbacks")
        if enable_checkpointing is not False and not any(isinstance(c, ModelCheckpoint) for c in cbs):
            cbs.append(ModelCheckpoint())
        if enable_progress_bar is not False and not any(isinstance(c, TQDMProgressBar) for c in cbs):
            cbs.append(TQDMProgressBar())
        if enable_model_summary is not False and not any(isinstance(c, ModelSummary) for c in cbs):
            cbs.append(ModelSummary())
        self.callbacks: list[Callback] = reorder_callbacks(cbs)
        apply_debugging_flags(self, fast_dev_run, overfit_batches)

        self.state = TrainerState()
        self.should_stop = False
        self.sanity_checking = False
        self.ckpt_path: Optional[str] = None
        self.lightning_module: Any = None
        self.datamodule: Any = None
        self.optimizers: list[Any] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        self._train_loader = self._val_loader_src = self._eval_loader = self._eval_fn = None
        self._val_loader: Any = None
        self.fit_progress = FitProgress()
        self._eval_batches_ready = 0
        self._logger_connector = LoggerConnector(self)
        self._restarting = False
        self._verbose = False
        self._runner = StepRunner(self)
        self._received_signal: Optional[int] = None
        self._orig_handlers: dict[int, Any] = {}
        self.num_training_batches = 0
        self._accumulating = False  # the current training batch only adds its gradients
        self.gradients: Any = None  # eager mode: the current gradients, readable in on_after_backward

    # ------------------------------------------------------------------ properties (Lightning names)
    @property
    def current_epoch(self) -> int:
        return self.fit_progress.epoch

    @property
    def global_step(self) -> int:
        return self.fit_progress.global_step

    @property
    def is_last_batch(self) -> bool:
        return self.fit_progress.is_last_batch

    @property
    def logger(self) -> Optional[TensorBoardLogger]:
        return self.loggers[0] if self.loggers else None

    @logger.setter
    def logger(self, logger: Optional[TensorBoardLogger]) -> None:
        self.loggers = [logger] if logger else []

    @property
    def log_dir(self) -> str:
        if self.loggers:
            lg = self.loggers[0]
            return lg.log_dir if hasattr(lg, "log_dir") else lg.save_dir
        return self.default_root_dir

    @property
    def model(self) -> Any:
        return self.lightning_module

    @property
    def checkpoint_callbacks(self) -> list[ModelCheckpoint]:
        return [c for c in self.callbacks if isinstance(c, ModelCheckpoint)]

    @property
    def checkpoint_callback(self) -> Optional[ModelCheckpoint]:
        return next(iter(self.checkpoint_callbacks), None)

    @property
    def early_stopping_callback(self) -> Optional[EarlyStopping]:
        return next((c for c in self.callbacks if isinstance(c, EarlyStopping)), None)

    @property
    def progress_bar_callback(self) -> Optional[TQDMProgressBar]:
        return next((c for c in self.callbacks if isinstance(c, TQDMProgressBar)), None)

    @property
    def training(self) -> bool:
        return self.state.stage == "train"

    @property
    def validating(self) -> bool:
        return self.state.stage == "validate"

    @property
    def testing(self) -> bool:
        return self.state.stage == "test"

    @property
    def predicting(self) -> bool:
        return self.state.stage == "predict"

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    @property
    def interrupted(self) -> bool:
        return self.state.status == "interrupted"

    @property
    def train_dataloader(self) -> Any:
        return self._train_loader

    @property
    def estimated_stepping_batches(self) -> Union[int, float]:
        """Optimizer steps the fit will take (Lightning's formula; loads the train loader if needed, e.g. from
        ``configure_optimizers`` to size a schedule)."""
        if self.max_epochs == -1:
            return float("inf") if self.max_steps == -1 else self.max_steps
        self._setup_train_data()
        steps = math.ceil(self.num_training_batches / self.accumulate_grad_batches) * max(self.max_epochs, 1)
        return min(steps, self.max_steps) if self.max_steps != -1 else steps

    @property
    def callback_metrics(self) -> dict[str, float]:
        return self._logger_connector.view("callback")

    @property
    def logged_metrics(self) -> dict[str, float]:
        return self._logger_connector.view("log")

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        return self._logger_connector.view("pbar")

    @property
    def enable_validation(self) -> bool:
        return (self._val_loader_src is not None and is_overridden("validation_step", self.lightning_module)
                and self.limit_val_batches > 0)

    @property
    def val_dataloaders(self) -> Any:
        if self._val_loader is None and self._val_loader_src is not None:
            self._val_loader = self._val_loader_src()
        return self._val_loader

    @property
    def num_val_batches(self) -> int:
        if self.state.fn == "validate":
            return _parse_num_batches(len(self._eval_loader), self.limit_val_batches, "val") \
                if self._eval_loader is not None else 0
        if not self.enable_validation or self.val_dataloaders is None:
            return 0
        return _parse_num_batches(len(self.val_dataloaders), self.limit_val_batches, "val")

    @property
    def num_test_batches(self) -> int:
        return _parse_num_batches(len(self._eval_loader), self.limit_test_batches, "test") if self._eval_loader else 0

    @property
    def num_predict_batches(self) -> int:
        return _parse_num_batches(len(self._eval_loader), self.limit_predict_batches,
                                  "predict") if self._eval_loader else 0

    # ------------------------------------------------------------------ public entry points
    def fit(self, model: Any, train_dataloaders: Any = None, val_dataloaders: Any = None, datamodule: Any = None,
            ckpt_path: Optional[str] = None) -> None:
        """Train ``model``; ``ckpt_path`` (path, ``"last"`` or ``"best"``) resumes weights, optimizer, RNG,
        epoch/step and the position inside the epoch exactly."""
        if train_dataloaders is not None and hasattr(train_dataloaders, "train_dataloader"):
            datamodule, train_dataloaders = train_dataloaders, None  # Lightning accepts a datamodule 2nd
        if datamodule is not None and (train_dataloaders is not None or val_dataloaders is not None):
            raise ValueError("You cannot pass `train_dataloader` or `val_dataloaders` to `trainer.fit(datamodule=...)`")
        self.datamodule = datamodule
        if datamodule is not None:
            self._train_src = datamodule.train_dataloader
            self._val_loader_src = getattr(datamodule, "val_dataloader", None)
        else:
            if train_dataloaders is None:
                raise ValueError("fit() needs `train_dataloaders` or a `datamodule`")
            self._train_src = lambda: train_dataloaders
            self._val_loader_src = None if val_dataloaders is None else (lambda: val_dataloaders)
        self._train_loader = self._val_loader = None
        self._eval_seen = 0
        self._run("fit", model, ckpt_path)

    def validate(self, model: Any = None, dataloaders: Any = None, ckpt_path: Optional[str] = None,
                 verbose: bool = True, datamodule: Any = None) -> list[dict[str, float]]:
        """Run one validation epoch; returns ``[{metric: value}]`` (epoch-level logged metrics)."""
        return self._evaluate("validate", model, dataloaders, ckpt_path, verbose, datamodule)

    def test(self, model: Any = None, dataloaders: Any = None, ckpt_path: Optional[str] = None,
             verbose: bool = True, datamodule: Any = None) -> list[dict[str, float]]:
        """Run one test epoch; returns ``[{metric: value}]`` and prints Lightning's results table if verbose."""
        return self._evaluate("test", model, dataloaders, ckpt_path, verbose, datamodule)

    def predict(self, model: Any = None, dataloaders: Any = None, datamodule: Any = None,
                return_predictions: Optional[bool] = None, ckpt_path: Optional[str] = None) -> Optional[list]:
        """Run ``predict_step`` over the predict loader (eval mode); returns the list of per-batch outputs."""
        self._return_predictions = return_predictions is not False
        return self._evaluate("predict", model, dataloaders, ckpt_path, False, datamodule)

    def _evaluate(self, fn: str, model: Any, dataloaders: Any, ckpt_path: Optional[str], verbose: bool,
                  datamodule: Any) -> Any:
        if dataloaders is not None and hasattr(dataloaders, "setup") and not hasattr(dataloaders, "__len__"):
            datamodule, dataloaders = dataloaders, None
        if model is None and ckpt_path is None and self.checkpoint_callback is not None \
                and self.checkpoint_callback.best_model_path:
            warnings.warn(f"`.{fn}(ckpt_path=None)` was called without a model. The best model of the previous "
                          "`fit` call will be used.", stacklevel=2)
            ckpt_path = "best"
        model = model if model is not None else self.lightning_module
        if model is None:
            raise ValueError(f"`Trainer.{fn}()` requires a `LightningModule` when it hasn't been passed in a "
                             "previous run")
        self.datamodule = datamodule if datamodule is not None else (self.datamodule if dataloaders is None else None)
        prefix = {"validate": "val"}.get(fn, fn)
        if dataloaders is not None:
            self._eval_src = lambda: dataloaders
        elif self.datamodule is not None:
            self._eval_src = getattr(self.datamodule, f"{prefix}_dataloader")
        else:
            raise ValueError(f"`Trainer.{fn}()` needs `dataloaders` or a `datamodule`")
        self._verbose, self._eval_loader = verbose, None
        if fn in ("validate", "test") and not is_overridden(f"{'validation' if fn == 'validate' else fn}_step",
                                                               model):
            raise ValueError(f"No `{'validation' if fn == 'validate' else fn}_step()` method defined to run "
                             f"`Trainer.{fn}`.")
        return self._run(fn, model, ckpt_path)

    # ------------------------------------------------------------------ the run (Lightning's Trainer._run)
    def _run(self, fn: str, model: Any, ckpt_path: Optional[str]) -> Any:
        self.state = TrainerState(fn=fn, status="running")
        self.lightning_module = model
        object.__setattr__(model, "_trainer", self)
        if self.datamodule is not None:
            try:
                self.datamodule.trainer = self
            except AttributeError:
                pass
        self._runner.reset()
        self.should_stop = False
        lc = self._logger_connector
        extra = model.configure_callbacks()
        if extra:
            extra = [extra] if isinstance(extra, Callback) else list(extra)
            types = {type(c) for c in extra}
            self.callbacks = reorder_callbacks([c for c in self.callbacks if type(c) not in types] + extra)
        for cb in self.callbacks:  # Lightning lets callbacks log through the module
            cb.log, cb.log_dict = model.log, model.log_dict
        self.profiler.setup(fn)
        try:
            self._select_device()
            if self.world_size > 1 and not self.is_global_zero:
                dist.barrier(self._group)  # rank zero downloads first; the others then find the files
            if self.datamodule is not None and hasattr(self.datamodule, "prepare_data"):
                self.datamodule.prepare_data()
            self._call_module("prepare_data")
            if self.world_size > 1 and self.is_global_zero:
                dist.barrier(self._group)
            if self.world_size > 1:
                self._share_rank_zero_loggers()
            for lg in self.loggers:  # Lightning creates the log dir before setup (logger.experiment)
                _ = getattr(lg, "experiment", None)
            if self.datamodule is not None and hasattr(self.datamodule, "setup"):
                self.datamodule.setup(stage=fn)
            self._call_callbacks("setup", stage=fn)
            self._call_module("setup", stage=fn)
            ckpt = None
            self.ckpt_path = ckpt_io.resolve_ckpt_path(self, fn, ckpt_path)
            if self.ckpt_path:
                ckpt = self.checkpoint_io.load_checkpoint(self.ckpt_path)
                ckpt_io.restore_modules_and_callbacks(self, ckpt)
            self.precision_plugin.setup(model)  # after the weights are in: 64-true casts them
            lc.reset_metrics()
            for r in lc.results.values():
                r.reset()
            if fn == "fit":
                if self.world_size > 1:  # DDP's start: every rank from rank zero's weights
                    model.update(dist.broadcast_tree(model.parameters(), self._group))
                    mx.eval(model.parameters())
                self._configure_optimizers()
                self._call_callbacks("on_fit_start")
                self._call_module("on_fit_start")
            if self.enable_autolog_hparams:
                lc.log_hyperparams()
            if fn == "fit":
                self._reset_loop_state()
                if ckpt is not None:
                    ckpt_io.restore_training_state(self, ckpt)
                    # Lightning skips the sanity check only when restarting inside an epoch or
                    # iteration-based (max_steps).
                    progress = self.fit_progress
                    self._restarting = (progress.batch_in_epoch > 0 or progress.pending_val
                                        or self.max_steps != -1)
                self._register_signals()
                self._run_fit()
                if self.world_size > 1:
                    self._share_checkpoint_paths()
                result = None
            elif fn == "predict":
                result = self._run_predict()
            else:
                result = self._run_evaluation(fn)
            self._restore_signals()
            self.state.stage = None
            if fn == "fit":
                self._call_callbacks("on_fit_end")
                self._call_module("on_fit_end")
            if self.datamodule is not None and hasattr(self.datamodule, "teardown"):
                self.datamodule.teardown(stage=fn)
            self._call_callbacks("teardown", stage=fn)
            self._call_module("teardown", stage=fn)
            for lg in self.loggers:
                lg.finalize("success")
            self.state.status = "finished"
            if self.is_global_zero:
                self.profiler.describe()
            return result
        except BaseException as exception:  # Lightning's _call_and_handle_interrupt / _interrupt
            self.state.status = "interrupted"
            self._restore_signals()
            self._call_callbacks("on_exception", exception)
            if self.datamodule is not None and hasattr(self.datamodule, "on_exception"):
                self.datamodule.on_exception(exception)
            for lg in self.loggers:
                lg.finalize("failed")
            self.state.stage = None
            raise
        finally:
            lc.active, lc.in_step = None, False

    def _select_device(self) -> None:
        if self.accelerator == "cpu":
            mx.set_default_device(mx.cpu)
        elif self.accelerator in ("gpu", "cuda", "mps"):
            if not mx.is_available(mx.gpu):
                raise ValueError(f"Trainer(accelerator={self.accelerator!r}) but MLX has no GPU here")
            mx.set_default_device(mx.gpu)
        else:
            mx.set_default_device(mx.gpu if mx.is_available(mx.gpu) else mx.cpu)

    def _call_callbacks(self, hook: str, *args: Any, monitoring: Optional[bool] = None, **kwargs: Any) -> None:
        model = self.lightning_module
        prev, model._current_fx_name = model._current_fx_name, hook
        for cb in self.callbacks:
            is_monitor = isinstance(cb, (EarlyStopping, ModelCheckpoint))
            if (monitoring is None or monitoring == is_monitor) and self._runs_here(cb, hook):
                with self.profiler.profile(f"[Callback]{cb.state_key}.{hook}"):
                    getattr(cb, hook)(self, model, *args, **kwargs)
        model._current_fx_name = prev

    # ModelCheckpoint hooks that may write or delete files: rank zero's alone (it computes the same paths).
    _CHECKPOINT_WRITING_HOOKS = frozenset({"on_train_batch_end", "on_train_epoch_end", "on_validation_end",
                                           "on_exception", "on_train_end"})

    def _runs_here(self, callback: Callback, hook: str) -> bool:
        """Whether ``callback.<hook>`` runs on this rank: all do on rank zero; elsewhere not the progress bar, the
        model summary, nor the file-writing hooks of ``ModelCheckpoint`` (its ``setup`` still finds ``dirpath``)."""
        if self.is_global_zero:
            return True
        if isinstance(callback, (TQDMProgressBar, ModelSummary)):
            return False
        return not (isinstance(callback, ModelCheckpoint) and hook in self._CHECKPOINT_WRITING_HOOKS)

    # ------------------------------------------------------------------ data parallel bookkeeping
    def _share_rank_zero_loggers(self) -> None:
        """Rank zero's logger versions on every rank; the other ranks' loggers become write-less views of them."""
        versions = dist.broadcast_object([getattr(lg, "version", None) for lg in self.loggers]
                                         if self.is_global_zero else None, self._group)
        if self.is_global_zero:
            return
        if len(versions) != len(self.loggers):
            raise RuntimeError(f"rank {self.global_rank} has {len(self.loggers)} loggers, rank 0 {len(versions)}")
        self.loggers = [lg if isinstance(lg, RankZeroOnlyLogger) else RankZeroOnlyLogger(lg)
                        for lg in self.loggers]
        for lg, version in zip(self.loggers, versions):
            if version is not None and hasattr(lg.logger, "share_version"):
                lg.logger.share_version(version)

    def _share_checkpoint_paths(self) -> None:
        """After ``fit``: rank zero's ``best_model_path``/``last_model_path``/top-k on every rank (for ``test``
        of the best, ``ckpt_path="best"``/``"last"``)."""
        for cb in self.checkpoint_callbacks:
            state = dist.broadcast_object(cb.state_dict(), self._group)
            if not self.is_global_zero:
                cb.load_state_dict(state)

    def _sync_epoch_results(self, results: Any) -> None:
        """Lightning's ``sync_dist``: reduce over the ranks the epoch aggregates of the values logged with
        ``sync_dist=True`` (a mean as sum of value x batch size over sum of batch sizes, so weighted by samples;
        ``sum``/``max``/``min`` by that operation). In place, once per epoch, on every rank alike."""
        if self.world_size == 1:
            return
        metrics = [m for key, m in sorted(results.items()) if key in self._sync_dist_keys and m.meta.on_epoch
                   and not m.has_reset]
        summed = [m for m in metrics if m.meta.reduce_fx in ("mean", "sum")]
        if summed:
            totals = dist.all_sum([x for m in summed for x in (m.value, m.cumulated_batch_size)], self._group)
            for i, m in enumerate(summed):
                m.value, m.cumulated_batch_size = totals[2 * i], totals[2 * i + 1]
        for fx, reduce in (("max", dist.all_max), ("min", dist.all_min)):
            chosen = [m for m in metrics if m.meta.reduce_fx == fx]
            if chosen:
                for m, value in zip(chosen, reduce([m.value for m in chosen], self._group)):
                    m.value = value

    def _agree_should_stop(self) -> None:
        """``should_stop`` on every rank when set on one (Lightning's ``reduce_boolean_decision``)."""
        if self.world_size > 1:
            self.should_stop = dist.any_rank(self.should_stop, self._group)

    def _signal_to_stop(self, agree: bool) -> Optional[int]:
        """The signal that stops ``fit`` here, the same on every rank: with several ranks a signal any one received
        (agreed now with ``agree``, else at the last training step), so that all stop at the same batch."""
        if self.world_size == 1:
            return self._received_signal
        if agree:
            stop = dist.any_rank(self._received_signal is not None, self._group)
            self._agreed_signal = (self._received_signal or signal.SIGTERM) if stop else None
        return self._agreed_signal

    def _call_module(self, hook: str, *args: Any, **kwargs: Any) -> Any:
        model = self.lightning_module
        prev, model._current_fx_name = model._current_fx_name, hook
        try:
            with self.profiler.profile(f"[LightningModule]{type(model).__name__}.{hook}"):
                return getattr(model, hook)(*args, **kwargs)
        finally:
            model._current_fx_name = prev

    def _call_both(self, hook: str, *args: Any) -> None:
        self._call_callbacks(hook, *args)
        self._call_module(hook, *args)

    # ------------------------------------------------------------------ optimizers / schedulers
    def _configure_optimizers(self) -> None:
        opt, configs = parse_optimizers(self._call_module("configure_optimizers"))
        self.optimizers, self.lr_scheduler_configs = [opt], configs
        # Initialize the state now: the compiled step captures this exact dict object.
        opt.init(self.lightning_module.trainable_parameters())

    def _next_learning_rate(self, opt: Any) -> float:
        """The learning rate the next update will use (MLX schedules evaluate at the current step)."""
        schedule = getattr(opt, "_schedulers", {}).get("learning_rate")
        return float(schedule(opt.step)) if schedule is not None else float(opt.learning_rate)

    def _step_schedulers(self, interval: str) -> None:
        idx = self.fit_progress.batch_in_epoch if interval == "step" else self.fit_progress.epoch + 1
        for config in self.lr_scheduler_configs:  # Lightning's _update_learning_rates
            if config.interval == interval and idx % config.frequency == 0:
                config.last_epoch += 1
                config.optimizer.learning_rate = float(config.scheduler(config.last_epoch))

    # ------------------------------------------------------------------ steps
    def _should_accumulate(self, batch_idx: int) -> bool:
        """Lightning's ``_should_accumulate``: this batch only adds its gradients; the step comes later (the last
        batch of an epoch always steps)."""
        return (batch_idx + 1) % self.accumulate_grad_batches != 0 and batch_idx + 1 != self.num_training_batches

    def _training_step(self, batch: Any, batch_idx: int, accumulating: bool) -> dict[str, Any]:
        with self.profiler.profile("[Strategy]SingleDeviceStrategy.training_step"):
            loss, logs, extra, finite_grads, metas = self._runner.train(batch, batch_idx, self.accumulate_grad_batches,
                                                                        step=not accumulating)
        loss_value = loss.item()
        finite, where = math.isfinite(loss_value), ""
        if self.world_size > 1:  # one small all-reduce: every rank stops at the same batch, for a NaN or a signal
            bad, stop = dist.all_sum([not finite, self._received_signal is not None], self._group)
            where = f" on rank {self.global_rank} (not finite on {int(bad)} of {self.world_size} ranks)"
            finite = finite and not bad
            self._agreed_signal = (self._received_signal or signal.SIGTERM) if stop else None
        if not finite:
            progress = self.fit_progress
            raise NonFiniteLossError(f"training loss is {loss_value}{where} at epoch {progress.epoch}, "
                                     f"batch {batch_idx} (global step {progress.global_step}); "
                                     "stopped without writing a checkpoint")
        if self.detect_anomaly and not bool(finite_grads.all().item()):
            names = [name for name, _ in tree_flatten(self.lightning_module.trainable_parameters())]
            name = names[int(np.argmin(np.array(finite_grads)))]
            progress = self.fit_progress
            raise NonFiniteGradientError(f"detect_anomaly: the gradient of {name} is not finite at epoch "
                                         f"{progress.epoch}, batch {batch_idx} (global step {progress.global_step});"
                                         " stopped without writing a checkpoint")
        if not accumulating:
            self.fit_progress.global_step += 1
        self._logger_connector.feed(logs, metas)
        return {"loss": loss, **extra}

    def _evaluation_step(self, hook: str, batch: Any, batch_idx: int) -> Any:
        with self.profiler.profile(f"[Strategy]SingleDeviceStrategy.{hook}"):
            out, logs, metas = self._runner.evaluate(hook, batch, batch_idx)
        self._logger_connector.feed(logs, metas)
        return out

    # ------------------------------------------------------------------ fit loop
    def _should_check_val_epoch(self) -> bool:
        return self.enable_validation and (self.check_val_every_n_epoch is None
                                           or (self.fit_progress.epoch + 1) % self.check_val_every_n_epoch == 0)

    def _can_stop_early(self) -> bool:
        progress = self.fit_progress
        return progress.epoch >= self.min_epochs and (not self.min_steps or progress.global_step >= self.min_steps)

    def _should_check_val(self, batch_idx: int) -> bool:
        if not self._should_check_val_epoch():
            return False
        if self.should_stop and self._can_stop_early():
            return True
        vci, n = self.val_check_interval, self.num_training_batches
        every = vci if isinstance(vci, int) and not isinstance(vci, bool) else max(1, int(n * vci))
        current = self.fit_progress.total_batch_idx if self.check_val_every_n_epoch is None else batch_idx
        return (current + 1) % every == 0

    def _fit_done(self) -> bool:
        if self.num_training_batches == 0 or _is_limit_reached(self.fit_progress.global_step, self.max_steps):
            return True
        if _is_limit_reached(self.fit_progress.epoch, self.max_epochs):
            return True
        return self.should_stop and self._can_stop_early()

    def _reset_loop_state(self) -> None:
        self.fit_progress, self._restarting = FitProgress(), False
        for config in self.lr_scheduler_configs:
            config.last_epoch = 0

    def _setup_train_data(self) -> None:
        if self._train_loader is None:
            self._train_loader = self._train_src()
            self.num_training_batches = _parse_num_batches(len(self._train_loader), self.limit_train_batches,
                                                           "train")

    def _run_fit(self) -> None:
        lc = self._logger_connector
        self._setup_train_data()
        if self.enable_validation and self.num_sanity_val_steps > 0 and not self._restarting:
            key = mx.random.state[0]  # Lightning runs the sanity check under isolate_rng()
            self.sanity_checking, self.state.stage = True, "sanity_check"
            lc.reset_metrics()
            self._call_callbacks("on_sanity_check_start")
            self._run_evaluation("validate")
            self._call_callbacks("on_sanity_check_end")
            lc.reset_metrics()
            self.sanity_checking = False
            set_rng(key)
        self.state.stage = "train"
        if self._fit_done() or self.limit_train_batches == 0:
            return
        self._call_both("on_train_start")
        while not self._fit_done():
            with self.profiler.profile("run_training_epoch"):
                self._run_train_epoch()
        self._call_both("on_train_end")

    def _run_train_epoch(self) -> None:
        """Lightning's fit-loop advance: one epoch of the training epoch loop, then the epoch-end bookkeeping."""
        lc, loader, n = self._logger_connector, self._train_loader, self.num_training_batches
        results = lc.results["train"]
        if hasattr(loader, "set_epoch"):  # batch order depends only on (seed, epoch) -> exact mid-epoch resume
            loader.set_epoch(self.fit_progress.epoch)
        start = self.fit_progress.batch_in_epoch  # > 0 only when resuming inside this epoch (no epoch-start hooks then)
        if start == 0:
            results.reset()
            self._call_both("on_train_epoch_start")
        lc.active = "train"
        batches = islice(iter(loader), start, n)
        progress = self.fit_progress
        if progress.pending_val:  # resumed from a checkpoint written at on_train_batch_end before validation ran
            progress.pending_val, progress.phase, progress.is_last_batch = False, "validation", start == n
            self.fit_progress.batches_that_stepped -= 1  # the checkpoint counted the batch already (see _loop_state)
            self._call_module("on_validation_model_zero_grad")
            self._run_validation_in_fit()
            self.fit_progress.batches_that_stepped += 1
        for batch_idx in range(start, n):
            if _is_limit_reached(progress.global_step, self.max_steps) or (self.should_stop and self._can_stop_early()):
                break
            with self.profiler.profile("[_TrainingEpochLoop].train_dataloader_next"):
                batch = _to_mx(next(batches))
            with self.profiler.profile("run_training_batch"):
                self._run_train_batch(batch, batch_idx)
            if self.should_stop:
                for logger in self.loggers:
                    logger.save()
            training_done = progress.batch_in_epoch >= n or _is_limit_reached(progress.global_step, self.max_steps)
            if not training_done and self._signal_to_stop(agree=False) is not None:
                raise TrainingInterrupted(self._signal_to_stop(agree=False))
        # the fit loop's on_advance_end
        self.fit_progress.phase, lc.in_step = "epoch_end", False
        self._call_callbacks("on_train_epoch_end", monitoring=False)
        self._call_module("on_train_epoch_end")
        self._sync_epoch_results(results)  # before checkpointing and early stopping read them
        self._call_callbacks("on_train_epoch_end", monitoring=True)
        self._agree_should_stop()
        lc.update_views(results.metrics(False))
        self.fit_progress.batches_that_stepped -= 1  # Lightning logs epoch metrics at the last batch's step
        lc.log_metrics(results.metrics(False)["log"])
        self.fit_progress.batches_that_stepped += 1
        results.reset()
        self.fit_progress.epoch += 1
        self.fit_progress.batch_in_epoch, self.fit_progress.phase, lc.active = 0, "idle", None
        if self._signal_to_stop(agree=True) is not None:
            raise TrainingInterrupted(self._signal_to_stop(agree=False))

    def _run_train_batch(self, batch: Any, batch_idx: int) -> None:
        """One batch of the training epoch loop (its ``advance`` and ``on_advance_end``)."""
        lc, progress, results = self._logger_connector, self.fit_progress, self._logger_connector.results["train"]
        accumulating = self._should_accumulate(batch_idx)
        progress.is_last_batch, progress.phase = batch_idx + 1 == self.num_training_batches, "batch"
        progress.total_batch_idx += 1
        results.batch, results.batch_size, lc.in_step = batch, None, True
        self._call_both("on_train_batch_start", batch, batch_idx)
        outputs = self._training_step(batch, batch_idx, accumulating)
        progress.batch_in_epoch, progress.phase = batch_idx + 1, "batch_end"
        self._accumulating = accumulating
        if not accumulating:
            self._step_schedulers("step")
        if progress.is_last_batch:
            self._step_schedulers("epoch")
        self._call_both("on_train_batch_end", outputs, batch, batch_idx)
        lc.update_views(results.metrics(True))
        results.batch = None
        if not accumulating and lc.should_update_logs():
            lc.log_metrics(results.metrics(True)["log"])
        if self._should_check_val(batch_idx):  # the epoch loop's on_advance_end
            progress.phase = "validation"
            if not accumulating:
                self._call_module("on_validation_model_zero_grad")
            self._run_validation_in_fit()
        if not accumulating:
            progress.batches_that_stepped += 1
        progress.phase, self._accumulating = "idle", False

    def _run_validation_in_fit(self) -> None:
        lc = self._logger_connector
        in_step = lc.in_step
        self._run_evaluation("validate")
        self._agree_should_stop()  # early stopping decided on_validation_end
        self.state.stage, lc.active, lc.in_step = "train", "train", in_step

    # ------------------------------------------------------------------ evaluation / prediction loops
    def _eval_loader_for(self, fn: str) -> Any:
        if fn == "validate" and self.state.fn == "fit":
            return self.val_dataloaders
        if self._eval_loader is None or self._eval_fn != fn:
            self._eval_loader, self._eval_fn = self._eval_src(), fn
        return self._eval_loader

    def _run_evaluation(self, fn: str) -> list[dict[str, float]]:
        """Lightning's ``_EvaluationLoop.run`` for ``fn`` in ("validate", "test"), incl. the sanity check."""
        lc, name, key = self._logger_connector, "validation" if fn == "validate" else "test", fn
        loader = self._eval_loader_for(fn)
        if fn == "validate" and self.state.fn == "fit":
            n = self.num_val_batches
        else:
            n = _parse_num_batches(len(loader), self.limit_val_batches if fn == "validate" else
                                   self.limit_test_batches, fn)
        if self.sanity_checking:
            n = min(n, self.num_sanity_val_steps)
        if n == 0:
            return []
        if self.state.fn == "fit" and hasattr(loader, "set_epoch"):
            loader.set_epoch(self.fit_progress.epoch)
        if self.state.fn != "fit":
            self._eval_seen = 0
        if not self.sanity_checking:
            self.state.stage = fn
        results = lc.results[key]
        lc.active, lc.in_step, self._eval_batches_ready = key, False, 0
        self._call_module(f"on_{name}_model_eval")
        self._call_both(f"on_{name}_start")
        self._call_both(f"on_{name}_epoch_start")
        batches = iter(loader)
        for batch_idx in range(n):
            with self.profiler.profile(f"[_EvaluationLoop].{'val' if fn == 'validate' else fn}_next"):
                batch = _to_mx(next(batches))
            self._eval_batches_ready += 1
            results.batch, results.batch_size, lc.in_step = batch, None, True
            self._call_both(f"on_{name}_batch_start", batch, batch_idx)
            out = self._evaluation_step(f"{name}_step", batch, batch_idx)
            self._call_both(f"on_{name}_batch_end", out, batch, batch_idx)
            lc.update_views(results.metrics(True))
            results.batch = None
            if not self.sanity_checking:  # Lightning's _seen_batches_per_dataloader: counts across a fit's runs
                lc.log_metrics(results.metrics(True)["log"], step=self._eval_seen)
                self._eval_seen += 1
        lc.in_step = False
        self._call_both(f"on_{name}_epoch_end")
        self._sync_epoch_results(results)
        lc.update_views(results.metrics(False))
        logged = {} if self.sanity_checking else dict(results.metrics(False)["log"])
        lc.log_metrics(logged)
        self._call_both(f"on_{name}_end")
        results.reset()
        self._call_module(f"on_{name}_model_train")
        lc.active = None
        if self._verbose and self.state.fn in ("validate", "test") and logged and self.is_global_zero:
            print_results(logged, fn)
        return [logged]

    def _run_predict(self) -> Optional[list]:
        model = self.lightning_module
        loader = self._eval_loader_for("predict")
        n = self.num_predict_batches
        self.state.stage = "predict"
        was_training = model.training
        self._call_module("on_predict_model_eval")
        self._call_both("on_predict_start")
        self._call_both("on_predict_epoch_start")
        predictions = []
        for batch_idx, batch in enumerate(islice(iter(loader), n)):
            batch = _to_mx(batch)
            self._call_both("on_predict_batch_start", batch, batch_idx)
            out = self._evaluation_step("predict_step", batch, batch_idx)
            self._call_both("on_predict_batch_end", out, batch, batch_idx)
            if self._return_predictions:
                predictions.append(out)
        self._call_both("on_predict_epoch_end")
        self._call_both("on_predict_end")
        model.train(was_training)
        return predictions if self._return_predictions else None

    # ------------------------------------------------------------------ signals
    def _register_signals(self) -> None:
        self._received_signal = self._agreed_signal = None
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            if self._received_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop immediately
            self._received_signal = signum
            print(f"\nReceived {signal.Signals(signum).name}: stopping after the current batch "
                  "(saving a resumable 'last' checkpoint)", file=sys.stderr)

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._orig_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)

    def _restore_signals(self) -> None:
        for sig, h in self._orig_handlers.items():
            signal.signal(sig, h)
        self._orig_handlers = {}

    # ------------------------------------------------------------------ checkpoints
    def _loop_state(self) -> dict[str, Any]:
        """Where a run restarted from this instant must continue (see ``_phase``)."""
        progress = self.fit_progress
        epoch, position, bts = progress.epoch, progress.batch_in_epoch, progress.batches_that_stepped
        pending_val = False
        if self.fit_progress.phase == "epoch_end":
            epoch, position = epoch + 1, 0
        elif self.fit_progress.phase in ("batch_end", "validation"):
            bts += 0 if self._accumulating else 1  # the batch finished but on_advance_end did not count it yet
            pending_val = self.fit_progress.phase == "batch_end" and self._should_check_val(position - 1)
        return {"epoch": epoch, "batch_in_epoch": position, "batches_that_stepped": bts,
                "global_step": progress.global_step, "pending_val": pending_val,
                "total_batch_idx": progress.total_batch_idx,
                "train_results": self._logger_connector.results["train"].state_dict() if position else {}}

    def dump_checkpoint(self, weights_only: bool = False) -> dict[str, Any]:
        """The checkpoint dict of the current state (see :func:`cnn.mx.checkpoint.dump_checkpoint`)."""
        return ckpt_io.dump_checkpoint(self, weights_only)

    def save_checkpoint(self, filepath: str, weights_only: bool = False) -> None:
        """Write the current training state to ``filepath`` (atomic, single ``.safetensors`` file); with several
        ranks only rank zero writes (all hold the same state), and no rank waits for it."""
        if self.lightning_module is None:
            raise AttributeError("Saving a checkpoint is only possible if a model is attached to the Trainer.")
        if self.is_global_zero:
            self.checkpoint_io.save_checkpoint(self.dump_checkpoint(weights_only), filepath)
