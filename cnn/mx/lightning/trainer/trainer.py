"""Mirror of lightning.pytorch.trainer.trainer: the ``Trainer`` facade, a Lightning-2.6-compatible trainer for MLX.

The work is done by the loops (:mod:`cnn.mx.lightning.loops`: fit, training epoch, evaluation, prediction,
automatic optimization), the strategy (:mod:`cnn.mx.lightning.strategies`: steps, backward, optimizer step,
collectives) and the connectors (:mod:`cnn.mx.lightning.trainer.connectors`); hooks are called through
:mod:`cnn.mx.lightning.trainer.call`. The trainer holds the flags, the state, the entry points and ``_run``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Optional, Union

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.callbacks.early_stopping import EarlyStopping
from cnn.mx.lightning.callbacks.model_checkpoint import ModelCheckpoint
from cnn.mx.lightning.callbacks.progress.tqdm_progress import TQDMProgressBar
from cnn.mx.lightning.core.optimizer import LRSchedulerConfig
from cnn.mx.lightning.loggers.logger import Logger
from cnn.mx.lightning.loggers.tensorboard import TensorBoardLogger
from cnn.mx.lightning.loops.evaluation_loop import EvaluationLoop
from cnn.mx.lightning.loops.fit_loop import FitLoop
from cnn.mx.lightning.loops.optimization.manual import verify_manual_optimization_support
from cnn.mx.lightning.loops.prediction_loop import PredictionLoop
from cnn.mx.lightning.loops.utilities import parse_loop_limits
from cnn.mx.lightning.trainer import setup
from cnn.mx.lightning.trainer.call import (
    call_and_handle_interrupt,
    call_callback_hooks,
    call_configure_model,
    call_lightning_module_hook,
    call_setup_hook,
    call_teardown_hook,
)
from cnn.mx.lightning.trainer.configuration_validator import verify_loop_configurations
from cnn.mx.lightning.trainer.connectors import callback_connector, checkpoint_connector
from cnn.mx.lightning.trainer.connectors.accelerator_connector import AcceleratorConnector
from cnn.mx.lightning.trainer.connectors.callback_connector import attach_model_callbacks
from cnn.mx.lightning.trainer.connectors.data_connector import DataConnector
from cnn.mx.lightning.trainer.connectors.logger_connector.logger_connector import LoggerConnector
from cnn.mx.lightning.trainer.connectors.signal_connector import SignalConnector
from cnn.mx.lightning.trainer.states import TrainerState
from cnn.mx.lightning.utilities.compile import check_module
from cnn.mx.lightning.utilities.model_helpers import is_overridden

__all__ = ["Trainer"]


class Trainer:
    """Train / evaluate an MLX :class:`~cnn.mx.lightning.core.module.LightningModule` with Lightning's ``Trainer`` API.

    Args:
        accelerator: ``"auto"`` (GPU when MLX has one, else CPU), ``"cpu"`` or ``"gpu"`` -> ``mx.set_default_device``.
        strategy: ``"auto"`` or ``"ddp"`` (``trainer.strategy``, :mod:`cnn.mx.lightning.strategies`): both train
            data-parallel over every process ``mlx.launch`` started (one process per device; see
            :mod:`cnn.mx.lightning.utilities.distributed`), ``"auto"`` as ``SingleDeviceStrategy`` when it started none.
        devices: one device per process (``1``, ``"auto"``, ``-1``, ``[0]``); more devices means more processes.
        num_nodes: only ``1`` (the hosts of a multi-host run come from ``mlx.launch``'s host file).
        precision: ``"32-true"``; ``"bf16-mixed"``/``"16-mixed"``: steps compute in bfloat16/float16 over float32
            master weights and optimizer state (``"16-mixed"`` with dynamic loss scaling); ``"64-true"``: float64, on
            the CPU only (see :mod:`cnn.mx.lightning.plugins.precision`).
        logger: ``True``/``None`` -> :class:`TensorBoardLogger` in ``default_root_dir``; ``False`` -> no logging;
            or a logger / list of loggers.
        callbacks: extra :class:`Callback`\\ s; checkpoint callbacks are moved last (Lightning's order).
        fast_dev_run: ``True`` or N: N (1) batches of each loop, one epoch, nothing logged, no checkpoint but
            Lightning's ``save_last`` (:func:`~cnn.mx.lightning.trainer.setup.init_debugging_flags`).
        max_epochs: stop after this many epochs; ``None`` -> 1000 (or unlimited if ``max_steps`` is set); -1 unlimited.
        max_steps: stop after this many optimizer steps (-1: unlimited).
        min_epochs, min_steps: ``should_stop`` is ignored until this many epochs, optimizer steps ran.
        max_time: stop training after this long (``"DD:HH:MM:SS"``, ``timedelta`` or dict): adds a :class:`Timer`
            checked after every batch, unless one is given.
        limit_train_batches, limit_val_batches, limit_test_batches, limit_predict_batches: batches per epoch (run)
            of each loop: int = count, float = fraction of the loader (None: 1.0; ``limit_val_batches=0``: none).
        overfit_batches: train on the same first N batches (int) or fraction of the batches every epoch, unshuffled
            (the DataModule reads ``trainer.overfit_batches``), and validate on N validation batches.
        val_check_interval: ``None``/``1.0`` = once per epoch; float = fraction of an epoch; int = every n batches.
        check_val_every_n_epoch: validate every n-th epoch (``None``: by ``val_check_interval`` across epochs).
        num_sanity_val_steps: validation batches run (and not logged) before training; -1 = all.
        log_every_n_steps: write train step metrics every n batches (Lightning's rule, see module docstring).
        enable_checkpointing, enable_progress_bar: add a default :class:`ModelCheckpoint`, :class:`TQDMProgressBar`
            if none is given.
        enable_model_summary: print a parameter summary at ``on_fit_start``.
        accumulate_grad_batches: sum the gradients of ``loss / N`` over N batches (inside the compiled step), then one
            optimizer step; the last batch of an epoch always steps. ``global_step``, the logger's step axis and
            ``"step"`` schedulers advance per optimizer step, as in Lightning.
        gradient_clip_val: clip gradients (``None``/0: off).
        gradient_clip_algorithm: ``"norm"`` (global L2 norm, ``optim.clip_grad_norm``; also ``None``) or ``"value"``.
        deterministic: accepted; MLX's CPU kernels are deterministic, determinism across resumes comes from the
            checkpointed RNG key and ``set_epoch``-driven data order.
        benchmark: accepted; ``True`` prints a one-line note that MLX has no kernel autotuner.
        inference_mode: accepted, no effect (evaluation never builds gradients in MLX).
        use_distributed_sampler: accepted, no effect (the DataModule shards by ``global_rank``/``world_size``).
        profiler: ``None`` or ``"simple"``: at the end of each run, a table of the time per hook, data fetch, step,
            batch and epoch (:class:`~cnn.mx.lightning.profilers.SimpleProfiler`).
        detect_anomaly: check every parameter's gradient after each backward pass; the first non-finite one stops
            ``fit`` with :class:`~cnn.errors.NonFiniteGradientError` naming the parameter, no checkpoint written.
        plugins: ``None`` or a checkpoint IO (alone or in a list): an object with ``save_checkpoint(checkpoint,
            path)`` and ``load_checkpoint(path)``, as :class:`SafetensorsCheckpointIO`, which is the default.
        barebones, sync_batchnorm, reload_dataloaders_every_n_epochs: only ``False``, ``False``, ``0``.
        default_root_dir: root for logs and checkpoints (default: cwd).
        enable_autolog_hparams: log ``hparams`` (``hparams.yaml``) at the start of every run.
        compile: opt-in, as in Lightning: ``mx.compile`` the training step (forward, backward, clipping, optimizer
            update) and the evaluation steps, eager after one warning when a trace fails, never under manual
            optimization; what a traced step reads: :mod:`cnn.mx.lightning.strategies.strategy`.

    What ``configure_optimizers()`` may return: :func:`cnn.mx.lightning.core.optimizer.parse_optimizers`. Hook
    order: Lightning 2.6's (``tests/mx/lightning/test_mx_hook_order.py`` holds it to it), and the hooks compiled
    mode skips, in :mod:`cnn.mx.lightning.trainer.call`.

    **Data parallel**: one process per device, started by ``mlx.launch``; what runs on which rank is in
    :mod:`cnn.mx.lightning.strategies.ddp`. **Signals**: SIGINT/SIGTERM stop ``fit`` at
    the next batch boundary with a resumable ``last`` checkpoint and :class:`TrainingInterrupted` (see
    :mod:`cnn.mx.lightning.trainer.connectors.signal_connector`). A non-finite training loss raises
    :class:`NonFiniteLossError` (after ``on_exception``) before any checkpoint of that step is written.
    """

    UNSUPPORTED: ClassVar[dict[str, tuple]] = setup.UNSUPPORTED  # per restricted argument: the values accepted

    def __init__(
        self, *, accelerator: str = "auto", strategy: str = "auto", devices: Union[int, str, list[int]] = "auto",
        num_nodes: int = 1, precision: Union[str, int] = "32-true",
        logger: Optional[Union[bool, Logger, list[Logger]]] = None,
        callbacks: Optional[Union[list[Callback], Callback]] = None, fast_dev_run: Union[int, bool] = False,
        max_epochs: Optional[int] = None, min_epochs: Optional[int] = None, max_steps: int = -1,
        min_steps: Optional[int] = None, max_time: Optional[Union[str, dict[str, int]]] = None,
        limit_train_batches: Optional[Union[int, float]] = None, limit_val_batches: Optional[Union[int, float]] = None,
        limit_test_batches: Optional[Union[int, float]] = None,
        limit_predict_batches: Optional[Union[int, float]] = None, overfit_batches: Union[int, float] = 0.0,
        val_check_interval: Optional[Union[int, float]] = None, check_val_every_n_epoch: Optional[int] = 1,
        num_sanity_val_steps: Optional[int] = 2, log_every_n_steps: Optional[int] = 50,
        enable_checkpointing: Optional[bool] = True, enable_progress_bar: Optional[bool] = True,
        enable_model_summary: Optional[bool] = True, accumulate_grad_batches: int = 1,
        gradient_clip_val: Optional[Union[int, float]] = None, gradient_clip_algorithm: Optional[str] = None,
        deterministic: Optional[Union[bool, str]] = None, benchmark: Optional[bool] = None,
        inference_mode: bool = True, use_distributed_sampler: bool = True, profiler: Optional[str] = None,
        detect_anomaly: bool = False, barebones: bool = False, plugins: Optional[Any] = None,
        sync_batchnorm: bool = False, reload_dataloaders_every_n_epochs: int = 0,
        default_root_dir: Optional[str] = None, enable_autolog_hparams: bool = True, compile: bool = False,
    ) -> None:
        setup.check_flags(self.UNSUPPORTED, dict(locals()))
        self.accelerator = accelerator
        self.accelerator_connector = AcceleratorConnector(accelerator, strategy, precision, plugins, benchmark)
        self.strategy = self.accelerator_connector.strategy
        # Every process mlx.launch started (one otherwise); Lightning's rank attributes.
        self.world_size = getattr(self.strategy, "world_size", 1)
        self.global_rank = getattr(self.strategy, "global_rank", 0)
        self.local_rank, self.node_rank, self.num_nodes = 0, 0, 1  # MLX gives no per-host numbering
        self.max_epochs, self.min_epochs = max_epochs, min_epochs  # parsed at each fit (parse_loop_limits)
        self.max_steps, self.min_steps = max_steps, min_steps
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm  # None: "norm", as Lightning keeps it
        self.enable_autolog_hparams = enable_autolog_hparams
        self.compile = compile
        self.checkpoint_io = self.strategy.checkpoint_io
        self.accumulate_grad_batches = accumulate_grad_batches
        self.precision_plugin = self.strategy.precision_plugin
        self.precision = self.precision_plugin.name
        self.detect_anomaly = bool(detect_anomaly)
        self.profiler = setup.make_profiler(profiler)
        self.data_connector = DataConnector(self)
        self.callbacks: list[Callback]
        callback_connector.on_trainer_init(self, callbacks, enable_checkpointing, enable_progress_bar,
                                           default_root_dir, enable_model_summary, max_time)  # sets default_root_dir
        self.data_connector.on_trainer_init(val_check_interval, check_val_every_n_epoch)  # sets datamodule too
        self.logger_connector = LoggerConnector(self)
        self.loggers: list[Any]
        self.logger_connector.on_trainer_init(logger, log_every_n_steps)  # sets loggers and log_every_n_steps
        setup.init_debugging_flags(self, limit_train_batches, limit_val_batches, limit_test_batches,
                                   limit_predict_batches, fast_dev_run, overfit_batches, val_check_interval,
                                   num_sanity_val_steps)  # after the loggers: fast_dev_run replaces them

        self.state = TrainerState()
        self.should_stop = False
        self.sanity_checking = False
        self.ckpt_path: Optional[str] = None
        self.num_training_batches: Union[int, float] = math.inf  # Lightning's, until a fit counts its loader
        self.gradients: Any = None  # eager mode: the current gradients, readable in on_after_backward
        self._checkpoint_connector = checkpoint_connector.CheckpointConnector(self)
        self.signal_connector = SignalConnector(self)
        self.fit_loop = FitLoop(self)
        self.evaluation_loop = EvaluationLoop(self)
        self.predict_loop = PredictionLoop(self)

    # ------------------------------------------------------------------ properties (Lightning names)
    @property
    def lightning_module(self) -> Any:
        return self.strategy.lightning_module

    @property
    def optimizers(self) -> list[Any]:
        return self.strategy.optimizers

    @optimizers.setter
    def optimizers(self, optimizers: list[Any]) -> None:
        self.strategy.optimizers = optimizers

    @property
    def lr_scheduler_configs(self) -> list[LRSchedulerConfig]:
        return self.strategy.lr_scheduler_configs

    @property
    def current_epoch(self) -> int:
        """The epoch (an ``mx.array`` scalar while a compiled step is traced: an input of that step)."""
        traced = self.strategy.compiled.traced_counters
        return traced["current_epoch"] if traced else self.fit_loop.epoch_progress.current

    @property
    def global_step(self) -> int:
        """Optimizer steps taken (an ``mx.array`` scalar while a compiled step is traced: an input of that step)."""
        traced = self.strategy.compiled.traced_counters
        return traced["global_step"] if traced else self.fit_loop.epoch_loop.global_step

    @property
    def is_last_batch(self) -> bool:
        return self.fit_loop.epoch_loop.batch_progress.is_last_batch

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
    def compiling(self) -> bool:
        """The steps run compiled: ``compile=True`` and no trace has failed (a failed one runs eagerly)."""
        return self.compile and not self.strategy.compiled.failed

    @property
    def train_dataloader(self) -> Any:
        return self.data_connector.train_loader

    @property
    def estimated_stepping_batches(self) -> Union[int, float]:
        """Optimizer steps the fit will take (Lightning's formula; loads the train loader if needed, e.g. from
        ``configure_optimizers`` to size a schedule)."""
        if self.max_epochs == -1:
            return float("inf") if self.max_steps == -1 else self.max_steps
        self.data_connector.setup_train_data()
        if self.num_training_batches == math.inf:  # a loader without len()
            return self.max_steps
        steps = math.ceil(self.num_training_batches / self.accumulate_grad_batches) * max(self.max_epochs, 1)
        return min(steps, self.max_steps) if self.max_steps != -1 else steps

    @property
    def callback_metrics(self) -> dict[str, float]:
        return self.logger_connector.view("callback")

    @property
    def logged_metrics(self) -> dict[str, float]:
        return self.logger_connector.view("log")

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        return self.logger_connector.view("pbar")

    @property
    def enable_validation(self) -> bool:
        return (self.data_connector.val_source is not None
                and is_overridden("validation_step", self.lightning_module) and self.limit_val_batches > 0)

    @property
    def val_dataloaders(self) -> Any:
        return self.data_connector.dataloaders("val")

    @property
    def test_dataloaders(self) -> Any:
        return self.data_connector.loaders.get("test")

    @property
    def predict_dataloaders(self) -> Any:
        return self.data_connector.loaders.get("predict")

    @property
    def num_val_batches(self) -> list[Union[int, float]]:
        """Batches per validation loader (``[]`` when fit does not validate)."""
        return self.data_connector.num_batches("val")

    @property
    def num_sanity_val_batches(self) -> list[Union[int, float]]:
        return [min(n, self.num_sanity_val_steps) for n in self.num_val_batches]

    @property
    def num_test_batches(self) -> list[Union[int, float]]:
        return self.data_connector.num_batches("test") if "test" in self.data_connector.loaders else []

    @property
    def num_predict_batches(self) -> list[Union[int, float]]:
        return self.data_connector.num_batches("predict") if "predict" in self.data_connector.loaders else []

    # ------------------------------------------------------------------ public entry points
    def fit(self, model: Any, train_dataloaders: Any = None, val_dataloaders: Any = None, datamodule: Any = None,
            ckpt_path: Optional[str] = None) -> None:
        """Train ``model``; ``ckpt_path`` (path, ``"last"`` or ``"best"``) resumes weights, optimizer, RNG,
        epoch/step and the position inside the epoch exactly."""
        check_module(model)
        self.data_connector.attach_fit_data(model, train_dataloaders, val_dataloaders, datamodule)
        verify_loop_configurations("fit", model)
        self.evaluation_loop.progress.seen = 0
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
        self.predict_loop.return_predictions = return_predictions is not False
        return self._evaluate("predict", model, dataloaders, ckpt_path, False, datamodule)

    def _evaluate(self, fn: str, model: Any, dataloaders: Any, ckpt_path: Optional[str], verbose: bool,
                  datamodule: Any) -> Any:
        if model is not None:
            check_module(model)
        ckpt_path = checkpoint_connector.select_ckpt_path(self, fn, model, ckpt_path)
        model = model if model is not None else self.lightning_module
        if model is None:
            raise TypeError(f"`Trainer.{fn}()` requires a `LightningModule` when it hasn't been passed in a "
                            "previous run")
        self.data_connector.attach_eval_data(fn, model, dataloaders, datamodule)
        self.evaluation_loop.verbose = verbose
        verify_loop_configurations(fn, model)
        return self._run(fn, model, ckpt_path)

    # ------------------------------------------------------------------ the run (Lightning's Trainer._run)
    def _run(self, fn: str, model: Any, ckpt_path: Optional[str]) -> Any:
        if fn == "fit":
            self.min_epochs, self.max_epochs = parse_loop_limits(self.min_steps, self.max_steps, self.min_epochs,
                                                                 self.max_epochs, self)
        self.state = TrainerState(fn=fn, status="running")
        self.strategy.connect(model)
        model.trainer = self
        self.data_connector.attach_trainer_to_datamodule()
        self.strategy.reset()
        self.should_stop = False
        attach_model_callbacks(self, model)
        self.profiler.setup(fn)
        return call_and_handle_interrupt(self, self._run_stage, fn, model, ckpt_path)

    def _run_stage(self, fn: str, model: Any, ckpt_path: Optional[str]) -> Any:
        strategy = self.strategy
        strategy.setup_environment()
        self.data_connector.prepare_data()
        strategy.share_rank_zero_loggers()
        call_setup_hook(self, fn)
        call_configure_model(self)
        ckpt = checkpoint_connector.restore_modules_and_callbacks(self, fn, ckpt_path)
        if fn == "fit" and not model.automatic_optimization:
            verify_manual_optimization_support(self)
        self.logger_connector.reset_metrics()
        self.logger_connector.reset_results()
        strategy.setup(self)  # after the weights are in: the precision plugin, rank zero's weights, optimizers
        if fn == "fit":
            call_callback_hooks(self, "on_fit_start")
            call_lightning_module_hook(self, "on_fit_start")
        if self.enable_autolog_hparams:
            self.logger_connector.log_hyperparams()
        if fn == "fit":
            self.fit_loop.reset()
            checkpoint_connector.restore_training_state(self, ckpt)
            self.signal_connector.register()
        model.zero_grad()  # Lightning's _run_stage does, before any loop (nothing to zero in MLX)
        if fn == "fit":
            self.fit_loop.run()
            strategy.share_checkpoint_paths()
            result = None
        elif fn == "predict":
            result = self.predict_loop.run()
        else:
            result = self.evaluation_loop.run(fn)
        self.signal_connector.restore()
        self.state.stage = None
        if fn == "fit":
            call_callback_hooks(self, "on_fit_end")
            call_lightning_module_hook(self, "on_fit_end")
        call_teardown_hook(self, fn)
        self.state.status = "finished"
        if self.is_global_zero:
            self.profiler.describe()
        return result

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, filepath: str, weights_only: bool = False) -> None:
        """Write the current training state to ``filepath`` (atomic, single ``.safetensors`` file); with several
        ranks only rank zero writes (all hold the same state), and no rank waits for it."""
        if self.lightning_module is None:
            raise AttributeError("Saving a checkpoint is only possible if a model is attached to the Trainer.")
        if self.is_global_zero:
            self.checkpoint_io.save_checkpoint(checkpoint_connector.dump_checkpoint(self, weights_only), filepath)
