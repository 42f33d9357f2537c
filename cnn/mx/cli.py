"""The MLX mirror of LightningCLI: the same YAML, subcommands, links and defaults."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Optional, Union

from cnn.mx.checkpoint import CHECKPOINT_IO
from cnn.mx.datamodule import DataModule
from cnn.mx.lightning import callbacks as mx_callbacks
from cnn.mx.lightning import loggers as mx_loggers
from cnn.mx.lightning import pacing as mx_pacing
from cnn.mx.lightning.trainer import Trainer
from cnn.mx.module import Classifier

import mlx.core as mx
import numpy as np
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser

from cnn.config import add_shared_arguments, apply_run_defaults, seed_value
from cnn.data.datasets import get_spec
from cnn.errors import ConfigError, TrainingInterrupted
from cnn.predictions import report_predictions

FRAMEWORK = "mlx"
SUBCOMMANDS = ("fit", "validate", "test", "predict")
# Lightning's class paths in a YAML, and the modules holding our mirrors of them.
LIGHTNING_MODULES = {"callbacks": (mx_callbacks, mx_pacing), "loggers": (mx_loggers,)}


def mirror_class_path(class_path: str) -> str:
    """``lightning.pytorch.callbacks.EarlyStopping`` -> ``cnn.mx.lightning.callbacks.EarlyStopping``.

    Short names (``EarlyStopping``) and our own paths pass through; a Lightning class we have
    no mirror of is a ConfigError naming it.
    """
    parts = class_path.split(".")
    if parts[0] not in ("lightning", "pytorch_lightning"):
        return class_path
    kind = next((p for p in parts if p in LIGHTNING_MODULES), None)
    name = parts[-1]
    module = next((m for m in LIGHTNING_MODULES.get(kind, ()) if hasattr(m, name)), None)
    if module is None:
        raise ConfigError(f"{class_path} has no MLX mirror; remove it or run with --framework torch")
    return f"{module.__name__}.{name}"


def _mirror_section(section):
    if isinstance(section, list):
        return [_mirror_section(s) for s in section]
    if isinstance(section, dict) and "class_path" in section:
        return {**section, "class_path": mirror_class_path(section["class_path"])}
    if isinstance(section, str):
        return mirror_class_path(section)
    return section


def mirror_config_text(path: str) -> str:
    """A YAML config with its Lightning callbacks and loggers pointed at our mirrors."""
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}".splitlines()[0]) from None
    trainer = config.get("trainer") or {}
    for key in ("callbacks", "logger"):
        if key in trainer:
            trainer[key] = _mirror_section(trainer[key])
    return yaml.safe_dump(config, sort_keys=False)


def mirror_args(args: list[str]) -> list[str]:
    """``args`` with every ``--config FILE`` replaced by its mirrored text."""
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" and i + 1 < len(args):
            out += ["--config", mirror_config_text(args[i + 1])]
            i += 2
            continue
        if arg.startswith("--config="):
            out += ["--config", mirror_config_text(arg.split("=", 1)[1])]
        else:
            out.append(arg)
        i += 1
    return out


def build_parser() -> ArgumentParser:
    """One jsonargparse parser with LightningCLI's layout: subcommand, then sections."""
    # exit_on_error=False: raise instead of printing usage; cnn.cli turns it into one line.
    parser = ArgumentParser(prog="cli.py --framework mlx", exit_on_error=False)
    subcommands = parser.add_subcommands(dest="subcommand", required=True)
    for name in SUBCOMMANDS:
        sub = ArgumentParser(prog=f"cli.py --framework mlx {name}", exit_on_error=False)
        sub.add_argument("-c", "--config", action=ActionConfigFile, help="a YAML config file")
        sub.add_argument("--seed_everything", type=Union[bool, int], default=True,
                         help="seed of weights, split, batch order and dropout")
        sub.add_class_arguments(Trainer, "trainer", instantiate=False, fail_untyped=False)
        sub.add_class_arguments(Classifier, "model", skip={"net"}, instantiate=False)
        sub.add_class_arguments(DataModule, "data", instantiate=False)
        sub.add_argument("--ckpt_path", type=Optional[str], default=None,
                         help="checkpoint to resume (fit) or evaluate: a path, 'last' or 'best'")
        add_shared_arguments(sub)
        subcommands.add_subcommand(name, sub, help=f"{name} with the MLX trainer")
    return parser


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


class CLI:
    """Parse, build the Trainer, Classifier and DataModule, run the subcommand.

    Like LightningCLI: ``fit`` ends with a test of the best checkpoint, ``predict`` prints
    (and optionally writes) one row per image file.
    """

    def __init__(self, args: list[str]):
        parser = build_parser()
        config = parser.parse_args(mirror_args(args))
        self.subcommand = config.subcommand
        section = config[self.subcommand]
        apply_run_defaults(section, self.subcommand, FRAMEWORK,
                           "cnn.mx.lightning.loggers.TensorBoardLogger",
                           "cnn.mx.lightning.callbacks.ModelCheckpoint",
                           checkpoint_suffix=".safetensors")
        seed_everything(seed_value(section.seed_everything))
        init = parser.instantiate_classes(config)[self.subcommand]
        self.datamodule = DataModule(**init.data)
        self.model = Classifier(**init.model)
        try:
            # the project's checkpoint files, which convert and the torch side read too
            self.trainer = Trainer(**{**init.trainer, "plugins": init.trainer.get("plugins")
                                      or CHECKPOINT_IO})
        except ValueError as error:  # an option Lightning has and the MLX trainer cannot honour
            raise ConfigError(str(error)) from None
        getattr(self, f"run_{self.subcommand}")(section)

    def run_fit(self, section) -> None:
        try:
            self.trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=section.ckpt_path)
        except TrainingInterrupted as stop:  # ModelCheckpoint wrote `last` from on_exception
            last = getattr(self.trainer.checkpoint_callback, "last_model_path", "")
            stop.checkpoint = last if last and os.path.isfile(last) else None
            raise
        best = getattr(self.trainer.checkpoint_callback, "best_model_path", "")
        if best and not self.trainer.interrupted:
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best)

    def run_validate(self, section) -> None:
        self.trainer.validate(self.model, datamodule=self.datamodule, ckpt_path=section.ckpt_path)

    def run_test(self, section) -> None:
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=section.ckpt_path)

    def run_predict(self, section) -> None:
        batches = self.trainer.predict(self.model, datamodule=self.datamodule,
                                       ckpt_path=section.ckpt_path)
        classes = self.model.hparams.get("classes") or get_spec(self.datamodule.dataset).classes
        report_predictions(self.datamodule, batches or [], classes, section.output)
