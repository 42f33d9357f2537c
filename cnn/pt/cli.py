"""LightningCLI for the torch port: the YAML's trainer/model/data sections, wired."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
import threading
import time
import warnings

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnn.cli_recipe import Side, begin_fit, check_section, end_fit, end_predict, prepare_run, print_notes, read_classes
from cnn.command_line import CommandLine
from cnn.config import DEFAULT_ROOT_DIR, add_shared_arguments
from cnn.errors import (
    ConfigError,
    NonFiniteGradientError,
    TrainingInterrupted,
    exit_description,
    trainer_setting_error,
)
from cnn.help_sections import title_sections
from cnn.interrupts import evaluation_stops
from cnn.pt.callbacks import FaultGuard
from cnn.pt.checkpoint import bound_checkpoint_reads
from cnn.pt.datamodule import DataModule
from cnn.pt.lightning_internals import exited_ranks, report_dead_ranks
from cnn.pt.module import Classifier
from cnn.runs import ConfigWrittenWhenTrainingStarts, discard_unstarted_run, peer_lost
from cnn.subcommands import TRAINER_COMMANDS
from cnn.user_classes import NO_NAMED_CLASSES, FrameworkClasses
from cnn.weights import first_line

FRAMEWORK = "torch"
# Checkpoints are read with weights_only=True (and from .safetensors) and written atomically.
SAFE_CHECKPOINT_IO = "cnn.pt.checkpoint.SafeCheckpointIO"
# What the MLX trainer does natively: stop on a NaN loss, checkpoint on SIGINT/SIGTERM, resume
# with the random state of the interrupted run; and the monitor check both sides add (cnn.monitors).
FIT_CALLBACKS = ("cnn.pt.callbacks.FaultGuard", "cnn.pt.callbacks.ResumeState", "cnn.pt.callbacks.MonitorCheck")
# What a class path under each key must be a subclass of (cnn.config_translation.check_class).
CLASS_BASES = {"trainer.callbacks": Callback, "trainer.logger": Logger, "optimizer": torch.optim.Optimizer,
               "lr_scheduler": torch.optim.lr_scheduler.LRScheduler}
# What a user's model and data derive from, and ours (cnn.user_classes).
FRAMEWORK_CLASSES = FrameworkClasses(LightningModule, LightningDataModule, Classifier, DataModule)
SIDE = Side(FRAMEWORK, CLASS_BASES, FRAMEWORK_CLASSES, "cnn.pt.run_files.TensorBoardLogger",
            "cnn.pt.run_files.ModelCheckpoint", FIT_CALLBACKS, ".ckpt", TensorBoardLogger,
            each_rank_predicts_all=False)


def quiet_lightning() -> None:
    """Silence Lightning's tips and per-run banners; warnings and errors still show."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda",
                 "lightning.pytorch.trainer.connectors.signal_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # overfit_batches: Lightning can only swap a torch DataLoader's sampler; our DataModule
    # turns its own shuffling off (DataModuleBase.overfitting), so this note would mislead.
    warnings.filterwarnings("ignore", message=".*requested to overfit but enabled.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    # cnn.cli hands LightningCLI the arguments left after taking out --framework.
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    # --optimizer: the CLI says so in a note: line of its own (cnn.optimizers.override_note)
    warnings.filterwarnings("ignore", message=".*configure_optimizers` will be overridden by.*")


def check_device_stats_monitor(callbacks, accelerator) -> None:
    """Lightning's ``DeviceStatsMonitor`` reads CPU figures through ``psutil``, which neither
    Lightning nor this project requires: on the CPU (or with ``cpu_stats: true``) without it, say
    so in one line instead of a traceback once training has started."""
    for callback in callbacks or []:
        if not str(getattr(callback, "class_path", callback)).endswith("DeviceStatsMonitor"):
            continue
        cpu_stats = (getattr(callback, "init_args", None) or {}).get("cpu_stats")
        on_cpu = accelerator == "cpu" or not torch.cuda.is_available()
        if (cpu_stats or (cpu_stats is None and on_cpu)) and importlib.util.find_spec("psutil") is None:
            raise ConfigError("DeviceStatsMonitor needs the psutil package for CPU figures, which is not "
                              "installed: pip install psutil, or set its cpu_stats: false")


class SaveConfigAsGiven(ConfigWrittenWhenTrainingStarts, SaveConfigCallback):
    """``config.yaml`` as the user gave it: without the logger and callbacks the run added by
    default (``cnn.config.apply_run_defaults``), which each framework adds its own of, so the
    file runs unchanged on either; a resumed fit's once its training starts."""

    def __init__(self, parser, config, as_given=None, resumed: bool = False, **kwargs):
        super().__init__(parser, as_given if as_given is not None else config, **kwargs)
        self.resumed = resumed

    def setup(self, trainer, pl_module, stage: str) -> None:
        # A logger with no local folder (MLflow on a server) leaves Lightning no log_dir, where it
        # would stop the run on an assert: the config then has no file, as on the MLX side.
        if trainer.log_dir is not None:
            super().setup(trainer, pl_module, stage)


def anomaly_error(error: RuntimeError) -> NonFiniteGradientError | None:
    """``detect_anomaly``'s stop (autograd found NaN in a backward function) as the one-line
    error the MLX side raises for a non-finite gradient; ``None`` for any other error."""
    first = (str(error).strip().splitlines() or [""])[0]
    if "returned nan values" not in first:
        return None
    return NonFiniteGradientError(f"detect_anomaly: {first.rstrip('.')}; stopped without "
                                  "writing a checkpoint")


# How gloo fails a collective whose peer process is gone (its socket closed); NCCL raises
# DistBackendError.
LOST_PEER = ("reset by peer", "closed by peer", "Broken pipe")
# Rank zero usually meets a dead rank first in a collective and says so from the main thread;
# Lightning's watcher thread, which sees the rank exit, speaks only if that has not happened by then
# (rank zero hangs in a collective that never fails).
WATCHER_GRACE_S = 10.0
_lost_rank_report = threading.Lock()  # held by whichever thread says that a rank is gone


def lost_peer(error: BaseException, trainer) -> bool:
    """Whether ``error`` is a collective failing because another rank of ``trainer`` is gone."""
    return trainer is not None and trainer.world_size > 1 and isinstance(error, RuntimeError) and (
        type(error).__name__ == "DistBackendError" or any(text in str(error) for text in LOST_PEER))


class CLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` over ``Classifier`` and ``DataModule``.

    Links the data's image shape and class names into the model and ``seed_everything`` into
    both, so nothing is typed twice. Unless the config names its own, logs to
    ``<default_root_dir>/<dataset>/torch/version_N`` with TensorBoard and keeps the best
    (by ``val/acc``) and the last checkpoint; ``fit`` also gets ``FaultGuard`` and
    ``ResumeState`` (``cnn.pt.callbacks``) and, resuming, continues in the run directory of
    its checkpoint, which it owns while it runs (``cnn.runs.own_run``); a new ``fit`` with
    ``model.init_from`` starts from that checkpoint's weights (``cnn.runs.start_new_run_from``).
    ``fit`` ends with a test of the best checkpoint and the run's settings for TensorBoard's
    HPARAMS tab (``cnn.hparams``), or a ``warning:`` line saying why it has none (or trained
    nothing). A SIGINT/SIGTERM that stopped ``fit`` leaves as ``TrainingInterrupted`` (exit
    128 + signum); one during an evaluation stops it at once (``cnn.interrupts``). A config or
    class path of the MLX side is translated first (``cnn.config_translation``; a ``note:`` line for each
    setting this side ignores), and the run folder's ``config.yaml`` holds the config as given
    (``SaveConfigAsGiven``), so it runs on either framework. LightningCLI's ``--optimizer`` and
    ``--lr_scheduler`` replace the model's ``configure_optimizers``, with a ``note:`` line in
    place of Lightning's warning (``cnn.optimizers``). ``--model CLASS`` / ``--data CLASS``
    (or ``class_path`` in the config) train a user's LightningModule / LightningDataModule instead,
    as LightningCLI's subclass mode (``cnn.user_classes``).
    """

    def __init__(self, line: CommandLine | None = None, **kwargs):
        self.started = time.time()
        quiet_lightning()
        try:
            self._build_and_run(line, **kwargs)
        except (TrainingInterrupted, SIGTERMException) as stop:  # the latter: Lightning's own
            guard = next((c for c in self.trainer.callbacks if isinstance(c, FaultGuard)), None)
            signum = getattr(stop, "signum", None) or getattr(guard, "signum", None) \
                or signal.SIGTERM
            last = getattr(self.trainer.checkpoint_callback, "last_model_path", "")
            raise TrainingInterrupted(signum, last if last and os.path.isfile(last) else None) \
                from None
        except RuntimeError as error:
            trainer = getattr(self, "trainer", None)
            if lost_peer(error, trainer):
                raise self.dead_rank_error() from None
            anomaly = anomaly_error(error)
            if anomaly is None:
                raise
            raise anomaly from None
        except SystemExit as stop:
            # Lightning turns a Ctrl-C before training starts into a silent exit(1).
            if isinstance(stop.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise

    def _build_and_run(self, line: CommandLine | None, **kwargs) -> None:
        notes: list[str] = []
        self.own = NO_NAMED_CLASSES if line is None else read_classes(line, SIDE, notes)
        args = None if line is None else line.args()
        print_notes(notes)
        try:
            self._lightning_cli(args, **kwargs)
        except BaseException as error:
            discard_unstarted_run(getattr(self, "trainer", None))  # a failed start leaves no version_N
            if trainer_setting_error(error):  # a trainer value Lightning cannot honour here
                raise ConfigError(f"trainer: {first_line(error)}") from None
            raise

    def _lightning_cli(self, args, **kwargs) -> None:
        own = self.own  # a section naming a class is parsed in subclass mode, as LightningCLI's
        super().__init__(own.parser_class("model", FRAMEWORK_CLASSES), own.parser_class("data", FRAMEWORK_CLASSES),
                         args=args,
                         subclass_mode_model=bool(own.model), subclass_mode_data=bool(own.data),
                         auto_configure_optimizers=True,
                         save_config_callback=SaveConfigAsGiven, save_config_kwargs={"overwrite": True},
                         trainer_defaults={"default_root_dir": DEFAULT_ROOT_DIR,
                                           "plugins": [{"class_path": SAFE_CHECKPOINT_IO}]},
                         # raise instead of printing usage: cnn.cli turns it into one line
                         parser_kwargs={"exit_on_error": False, **{
                             name: {"exit_on_error": False}
                             for name in TRAINER_COMMANDS}},
                         **kwargs)

    def instantiate_trainer(self, **kwargs):
        # Lightning's Trainer refuses the flags it cannot honour on this machine or install
        # (strategy fsdp on a CPU, precision transformer-engine without its package) with a
        # ValueError or an ImportError: the user's trainer values, so one line
        try:
            return super().instantiate_trainer(**kwargs)
        except (ValueError, ImportError) as error:
            raise ConfigError(f"trainer: {first_line(error)}") from None

    def _parse_ckpt_path(self) -> None:  # a Lightning internal: cnn.pt.lightning_internals
        # LightningCLI would torch.load the checkpoint (no .safetensors, tracebacks on bad files)
        # and let its hparams override the config; the config decides, on_load_checkpoint checks.
        pass

    def _run_subcommand(self, subcommand: str) -> None:
        bound_checkpoint_reads(self.trainer, self.model)
        if subcommand == "fit":
            super()._run_subcommand(subcommand)
            return
        with evaluation_stops(subcommand):  # Lightning's predict loop never looks at a SIGTERM
            super()._run_subcommand(subcommand)

    def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):  # an internal too
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        title_sections(parser, subcommand)
        return parser

    def add_arguments_to_parser(self, parser) -> None:
        add_shared_arguments(parser, self.own)

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        # before LightningCLI seeds anything or builds a class: one line for a value out of range
        check_section(self.config[self.config["subcommand"]], self.own)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        if not config.trainer.plugins:  # e.g. MLX's config: `plugins: null`
            config.trainer.plugins = [{"class_path": SAFE_CHECKPOINT_IO}]
        self.save_config_kwargs["as_given"] = config.clone()
        self.save_config_kwargs["resumed"] = self.subcommand == "fit" and bool(config.get("ckpt_path"))
        check_device_stats_monitor(config.trainer.callbacks, config.trainer.accelerator)
        prepare_run(config, self.subcommand, self.own, SIDE)
        if config.trainer.logger is False:  # no run folder (predict, --trainer.logger false): no config.yaml
            self.save_config_callback = None

    def before_fit(self) -> None:
        begin_fit(self.trainer, self.model, self.config.fit.ckpt_path)
        report_dead_ranks(self.watcher_saw_dead_rank)

    def dead_rank_error(self):
        """The error of the main thread, which met a rank gone in a collective: which one and how,
        when this process started it (its exit may take a moment to be seen)."""
        _lost_rank_report.acquire(blocking=False)  # the watcher thread stays quiet
        deadline = time.monotonic() + (1.0 if self.trainer.is_global_zero else 0.0)
        while not (dead := exited_ranks(self.trainer)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not dead:
            return peer_lost(self.trainer, ".ckpt")
        local_rank, status = dead[0]
        return peer_lost(self.trainer, ".ckpt", self.trainer.global_rank + local_rank,
                         exit_description(status))

    def watcher_saw_dead_rank(self, local_rank: int, status: int) -> None:
        """In Lightning's watcher thread: say which rank is gone and end this process, unless the
        main thread has said it first."""
        time.sleep(WATCHER_GRACE_S)
        if _lost_rank_report.acquire(blocking=False):
            error = peer_lost(self.trainer, ".ckpt", self.trainer.global_rank + local_rank,
                              exit_description(status))
            print(f"\nerror: {error}", file=sys.stderr, flush=True)
            os._exit(1)  # the main thread is stuck in a collective: nothing else would end it

    def after_fit(self) -> None:
        end_fit(self.trainer, self.model, self.datamodule, SIDE, self.started,
                lambda best: self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best))

    def after_predict(self) -> None:
        end_predict(self.trainer, self.model, self.datamodule, self.own, SIDE,
                    self.trainer.predict_loop.predictions, self.config.predict.output)
