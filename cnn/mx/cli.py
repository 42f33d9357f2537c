"""The MLX mirror of LightningCLI: the same YAML, subcommands, links and defaults."""

from __future__ import annotations

import os
import time
from typing import Optional, Union

from cnn.mx.checkpoint import SafeCheckpointIO, bound_checkpoint_reads
from cnn.mx.cli_optimizers import add_optimizer_arguments, replace_configure_optimizers
from cnn.mx.compiler import look_for_compiler
from cnn.mx.datamodule import DataModule
from cnn.mx.lightning import LightningDataModule, LightningModule
from cnn.mx.lightning.callbacks import Callback
from cnn.mx.lightning.cli import SaveConfigCallback
from cnn.mx.lightning.loggers import Logger, TensorBoardLogger
from cnn.mx.lightning.trainer import Trainer
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException
from cnn.mx.lightning.utilities.seed import seed_everything as lightning_seed_everything
from cnn.mx.module import Classifier

import mlx.optimizers as optim
from jsonargparse import ActionConfigFile, ArgumentParser

from cnn.cli_recipe import Side, begin_fit, check_section, end_fit, end_predict, prepare_run, print_notes, read_classes
from cnn.command_line import CommandLine
from cnn.config import DEFAULT_ROOT_DIR, add_shared_arguments, seed_value
from cnn.errors import ConfigError, TrainingInterrupted, trainer_setting_error
from cnn.help_sections import title_sections
from cnn.interrupts import evaluation_stops
from cnn.runs import ConfigWrittenWhenTrainingStarts, discard_unstarted_run, peer_lost
from cnn.subcommands import TRAINER_COMMANDS
from cnn.user_classes import (
    NO_NAMED_CLASSES,
    FrameworkClasses,
    NamedClasses,
)
from cnn.weights import first_line

FRAMEWORK = "mlx"
# What a class path under each key must be a subclass of (cnn.config_translation.check_class).
CLASS_BASES = {"trainer.callbacks": Callback, "trainer.logger": Logger, "optimizer": optim.Optimizer}
# What a user's model and data derive from, and ours.
FRAMEWORK_CLASSES = FrameworkClasses(LightningModule, LightningDataModule, Classifier, DataModule)
SIDE = Side(FRAMEWORK, CLASS_BASES, FRAMEWORK_CLASSES, "cnn.mx.lightning.loggers.TensorBoardLogger",
            "cnn.mx.callbacks.ModelCheckpoint", ("cnn.mx.callbacks.MonitorCheck",), ".safetensors",
            TensorBoardLogger, each_rank_predicts_all=True)


class SaveConfigAsGiven(ConfigWrittenWhenTrainingStarts, SaveConfigCallback):
    """The mirror's ``SaveConfigCallback``, given the config as the user gave it; a resumed fit's
    is written once its training starts."""

    def __init__(self, parser, config, resumed: bool = False, **kwargs) -> None:
        super().__init__(parser, config, **kwargs)
        self.resumed = resumed


def add_section(parser: ArgumentParser, section: str, own: NamedClasses) -> None:
    """``model`` or ``data``: our class's arguments, or, where ``own`` names a class, a class-path
    section for any subclass of this side's base (LightningCLI's subclass mode)."""
    if getattr(own, section):
        parser.add_subclass_arguments(own.parser_class(section, FRAMEWORK_CLASSES), section, required=True,
                                      fail_untyped=False)
    else:
        parser.add_class_arguments(own.parser_class(section, FRAMEWORK_CLASSES), section, instantiate=False)


def build_parser(own: NamedClasses = NO_NAMED_CLASSES) -> tuple[ArgumentParser, dict[str, ArgumentParser]]:
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
        add_section(sub, "model", own)
        add_section(sub, "data", own)
        add_shared_arguments(sub, own)
        add_optimizer_arguments(sub)
        # last, as LightningCLI adds the subcommand's own arguments after the links
        sub.add_argument_group(name, name=name).add_argument(
            "--ckpt_path", type=Optional[str], default=None,
            help="checkpoint to resume (fit) or evaluate: a path, 'last' or 'best'; 'untrained' "
                 "evaluates the seeded, untrained weights")
        title_sections(sub, name)
        subcommands.add_subcommand(name, sub, help=f"{name} with the MLX trainer")
        subs[name] = sub
    return parser, subs


def seed_everything(seed: int) -> None:
    lightning_seed_everything(seed, verbose=False)


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
    A config or class path of the torch side is translated first (``cnn.config_translation``), with a
    ``note:`` line on stderr for each setting this side ignores. ``--optimizer`` and
    ``--lr_scheduler`` replace the model's ``configure_optimizers`` as LightningCLI's do
    (``cnn.mx.cli_optimizers``), a torch name becoming its ``mlx.optimizers`` twin (``cnn.optimizers``).
    ``--model CLASS`` / ``--data CLASS`` (or ``class_path`` in the config) train a user's mirror
    ``LightningModule`` / ``LightningDataModule`` instead, as LightningCLI's subclass mode
    (``cnn.user_classes``).
    """

    def __init__(self, line: CommandLine):
        self.started = time.time()
        notes: list[str] = []
        self.own = read_classes(line, SIDE, notes)
        parser, subs = build_parser(self.own)
        config = parser.parse_args(line.args())
        print_notes(notes)
        self.subcommand = config.subcommand
        section = config[self.subcommand]
        check_section(section, self.own)
        as_given = section.clone()
        prepare_run(section, self.subcommand, self.own, SIDE)
        seed_everything(seed_value(section.seed_everything))
        init = parser.instantiate_classes(config)[self.subcommand]
        # a class-path section is instantiated by the parser; ours from its arguments
        self.datamodule = init.data if self.own.data else DataModule(**init.data)
        self.model = init.model if self.own.model else Classifier(**init.model)
        replace_configure_optimizers(self.model, section.optimizer, section.lr_scheduler)
        try:
            # the project's checkpoint files, which convert and the torch side read too
            # like LightningCLI's: config.yaml in the run folder, overwritten by a resumed run; a
            # run without a logger (predict, --trainer.logger false) has no folder, and no file;
            # nor does a fast_dev_run (LightningCLI leaves the callback out then too)
            resumed = self.subcommand == "fit" and bool(section.get("ckpt_path"))
            save_config = [SaveConfigAsGiven(subs[self.subcommand], as_given, resumed=resumed, overwrite=True)] \
                if section.trainer.logger is not False and not section.trainer.fast_dev_run else []
            self.trainer = Trainer(**{**init.trainer, "plugins": init.trainer.get("plugins") or SafeCheckpointIO(),
                                      "callbacks": [*(init.trainer.get("callbacks") or []), *save_config]})
        except (ValueError, MisconfigurationException) as error:  # an option Lightning refuses, or the MLX trainer
            raise ConfigError(str(error)) from None
        bound_checkpoint_reads(self.trainer, self.model)
        look_for_compiler()  # not at the first compiled step, where it would swallow a Ctrl-C
        try:
            getattr(self, f"run_{self.subcommand}")(section)
        except BaseException as error:
            discard_unstarted_run(self.trainer)  # a failed start leaves no version_N behind
            if self.trainer.accelerator_connector.lost_peer(error):
                raise peer_lost(self.trainer, ".safetensors") from None
            if isinstance(error, SystemExit) and isinstance(error.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None  # Lightning's exit(1) after a Ctrl-C: "interrupted", as on torch
            if trainer_setting_error(error):  # a trainer value the run cannot honour, as on the torch side
                raise ConfigError(f"trainer: {first_line(error)}") from None
            raise

    def run_fit(self, section) -> None:
        trainer = self.trainer
        begin_fit(trainer, self.model, section.ckpt_path)
        try:
            trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=section.ckpt_path)
        except TrainingInterrupted as stop:  # ModelCheckpoint wrote `last` from on_exception
            last = getattr(trainer.checkpoint_callback, "last_model_path", "")
            stop.checkpoint = last if last and os.path.isfile(last) else None
            raise
        end_fit(trainer, self.model, self.datamodule, SIDE, self.started,
                lambda best: trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best))

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
            end_predict(self.trainer, self.model, self.datamodule, self.own, SIDE, batches, section.output)
