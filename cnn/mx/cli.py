"""The MLX mirror of LightningCLI: the same YAML, subcommands, links and defaults."""

from __future__ import annotations

import os
import random
import sys
import time
from typing import Optional, Union

from cnn.mx.checkpoint import CheckpointIO, bound_checkpoint_reads
from cnn.mx.datamodule import DataModule
from cnn.mx.lightning.callbacks import Callback
from cnn.mx.lightning.cli import SaveConfigCallback
from cnn.mx.lightning.loggers import TensorBoardLogger, VersionedLogger
from cnn.mx.lightning.trainer import Trainer
from cnn.mx.module import Classifier

import mlx.core as mx
import numpy as np
from jsonargparse import ActionConfigFile, ArgumentParser

from cnn.config import DEFAULT_ROOT_DIR, add_shared_arguments, apply_run_defaults, seed_value
from cnn.crossing import check_optional_packages, translate_args
from cnn.errors import ConfigError, TrainingInterrupted
from cnn.help_sections import title_sections
from cnn.hparams import record_hparams
from cnn.interrupts import evaluation_stops
from cnn.limits import check_config
from cnn.predictions import predict_class_names, report_predictions
from cnn.runs import discard_unstarted_run, finish_fit, own_run, peer_lost, start_new_run_from
from cnn.subcommands import TRAINER_COMMANDS

FRAMEWORK = "mlx"
# What a class path under each key must be a subclass of (cnn.crossing.check_class).
CLASS_BASES = {"trainer.callbacks": Callback, "trainer.logger": VersionedLogger}


def build_parser() -> tuple[ArgumentParser, dict[str, ArgumentParser]]:
    """One jsonargparse parser with LightningCLI's layout: subcommand, then sections; and the
    parser of each subcommand (what ``config.yaml`` is written with)."""
    # exit_on_error=False: raise instead of printing usage; cnn.cli turns it into one line.
    parser = ArgumentParser(prog="cli.py --framework mlx", exit_on_error=False)
    subcommands = parser.add_subcommands(dest="subcommand", required=True)
    subs = {}
    for name in TRAINER_COMMANDS:
        sub = ArgumentParser(prog=f"cli.py --framework mlx {name}", exit_on_error=False)
        sub.add_argument("-c", "--config", action=ActionConfigFile, help="a YAML config file")
        sub.add_argument("--seed_everything", type=Union[bool, int], default=True,
                         help="seed of weights, split, batch order and dropout")
        sub.add_class_arguments(Trainer, "trainer", instantiate=False, fail_untyped=False)
        sub.set_defaults({"trainer.default_root_dir": DEFAULT_ROOT_DIR})
        sub.add_class_arguments(Classifier, "model", instantiate=False)
        sub.add_class_arguments(DataModule, "data", instantiate=False)
        add_shared_arguments(sub)
        # last, as LightningCLI adds the subcommand's own arguments after the links
        sub.add_argument_group(name, name=name).add_argument(
            "--ckpt_path", type=Optional[str], default=None,
            help="checkpoint to resume (fit) or evaluate: a path, 'last' or 'best'")
        title_sections(sub, name)
        subcommands.add_subcommand(name, sub, help=f"{name} with the MLX trainer")
        subs[name] = sub
    return parser, subs


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


class CLI:
    """Parse, build the Trainer, Classifier and DataModule, run the subcommand.

    Like LightningCLI: ``fit`` ends with a test of the best checkpoint (then the run's settings
    for TensorBoard's HPARAMS tab, ``cnn.hparams``; or a ``warning:`` line saying why it has
    none, or trained nothing) and owns its run folder while it runs (``cnn.runs.own_run``); a new
    ``fit`` with ``model.init_from`` starts from that checkpoint's weights
    (``cnn.runs.start_new_run_from``); a signal stops an evaluation at once
    (``cnn.interrupts``); ``predict`` prints (and optionally writes) one row per image file,
    and the run folder gets ``config.yaml``: the config as given (before the run's default
    logger and callbacks), which either framework runs.
    A config or class path of the torch side is translated first (``cnn.crossing``), with a
    ``note:`` line on stderr for each setting this side ignores.
    """

    def __init__(self, args: list[str]):
        self.started = time.time()
        parser, subs = build_parser()
        notes: list[str] = []
        config = parser.parse_args(translate_args(args, FRAMEWORK, notes, CLASS_BASES))
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        self.subcommand = config.subcommand
        section = config[self.subcommand]
        check_config(section)
        as_given = section.clone()
        check_optional_packages(section.trainer.callbacks, section.trainer.logger)
        apply_run_defaults(section, self.subcommand, FRAMEWORK,
                           "cnn.mx.lightning.loggers.TensorBoardLogger",
                           "cnn.mx.lightning.callbacks.ModelCheckpoint",
                           fit_callbacks=("cnn.mx.callbacks.MonitorCheck",), checkpoint_suffix=".safetensors")
        seed_everything(seed_value(section.seed_everything))
        init = parser.instantiate_classes(config)[self.subcommand]
        self.datamodule = DataModule(**init.data)
        self.model = Classifier(**init.model)
        try:
            # the project's checkpoint files, which convert and the torch side read too
            # like LightningCLI's: config.yaml in the run folder, overwritten by a resumed run; a
            # run without a logger (predict, --trainer.logger false) has no folder, and no file;
            # nor does a fast_dev_run (LightningCLI leaves the callback out then too)
            save_config = [SaveConfigCallback(subs[self.subcommand], as_given, overwrite=True)] \
                if section.trainer.logger is not False and not section.trainer.fast_dev_run else []
            self.trainer = Trainer(**{**init.trainer, "plugins": init.trainer.get("plugins") or CheckpointIO(),
                                      "callbacks": [*(init.trainer.get("callbacks") or []), *save_config]})
        except ValueError as error:  # an option Lightning has and the MLX trainer cannot honour
            raise ConfigError(str(error)) from None
        bound_checkpoint_reads(self.trainer, self.model)
        try:
            getattr(self, f"run_{self.subcommand}")(section)
        except BaseException as error:
            discard_unstarted_run(self.trainer)  # a failed start leaves no version_N behind
            if self.trainer.accelerator_connector.lost_peer(error):
                raise peer_lost(self.trainer, ".safetensors") from None
            raise

    def run_fit(self, section) -> None:
        trainer = self.trainer
        start_new_run_from(self.model, section.ckpt_path)
        if trainer.loggers and trainer.is_global_zero:
            own_run(trainer.log_dir)  # before any file of the run is written
        try:
            trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=section.ckpt_path)
        except TrainingInterrupted as stop:  # ModelCheckpoint wrote `last` from on_exception
            last = getattr(trainer.checkpoint_callback, "last_model_path", "")
            stop.checkpoint = last if last and os.path.isfile(last) else None
            raise
        if finish_fit(trainer, lambda best: trainer.test(self.model, datamodule=self.datamodule,
                                                         ckpt_path=best)):
            record_hparams(trainer, TensorBoardLogger, FRAMEWORK, self.started)

    def run_validate(self, section) -> None:
        with evaluation_stops("validate"):
            self.trainer.validate(self.model, datamodule=self.datamodule, ckpt_path=section.ckpt_path)

    def run_test(self, section) -> None:
        with evaluation_stops("test"):
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=section.ckpt_path)

    def run_predict(self, section) -> None:
        with evaluation_stops("predict"):
            batches = self.trainer.predict(self.model, datamodule=self.datamodule,
                                           ckpt_path=section.ckpt_path)
            report_predictions(self.datamodule, batches or [],
                               predict_class_names(self.model.hparams, self.datamodule.dataset),
                               section.output)
