"""The steps both sides' CLIs run, written once; each side calls them where its framework puts
them (LightningCLI's hooks on torch, one straight function on MLX) and gives only what its
framework forces: its class bases, its logger and checkpoint classes, its default callbacks and
checkpoint suffix (``Side``).

In order: ``read_classes`` (the command line's class paths translated to the side and named
classes found), ``check_section`` (values in range, before anything is seeded or built),
``prepare_run`` (optimizer note, optional packages, the run's defaults), ``begin_fit`` (a new
run from ``init_from``, the run folder owned), ``end_fit`` (the test of the best checkpoint and
the HPARAMS record), ``end_predict`` (the table of predictions).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from cnn.command_line import CommandLine
from cnn.config import apply_run_defaults
from cnn.config_translation import check_optional_packages, translate_args
from cnn.hparams import record_hparams
from cnn.limits import check_config
from cnn.optimizers import override_note
from cnn.predictions import predict_class_names, report_predictions
from cnn.runs import finish_fit, own_run, start_new_run_from
from cnn.user_classes import FrameworkClasses, NamedClasses, as_our_sections, named_classes, untestable_reason


@dataclass(frozen=True)
class Side:
    """What one framework's CLI gives the shared steps: its name (``torch``, ``mlx``), the base
    class each class-path key takes (``cnn.config_translation.check_class``), its model and data
    classes, the class paths of its default logger and checkpoint callback, the callbacks every
    ``fit`` gets, its checkpoint suffix, its TensorBoard logger class, and whether each rank of a
    distributed ``predict`` predicts every file (MLX's launch: rank zero alone reports them) or
    its share (Lightning's sampler: each reports its own)."""

    framework: str
    class_bases: Mapping[str, type]
    classes: FrameworkClasses
    logger_class: str
    checkpoint_class: str
    fit_callbacks: tuple[str, ...]
    checkpoint_suffix: str
    tensorboard_logger: type
    each_rank_predicts_all: bool


def print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def read_classes(line: CommandLine, side: Side, notes: list[str]) -> NamedClasses:
    """The command line's torch or MLX class paths translated to ``side`` (a ``note:`` text in
    ``notes`` for each setting it ignores) and the user's classes it names."""
    return named_classes(translate_args(line, notes, side.class_bases), side.classes, notes)


def check_section(section, own: NamedClasses) -> None:
    """One ``error:`` line for a value out of range, before anything is seeded or built."""
    check_config(as_our_sections(section, own))


def prepare_run(section, subcommand: str, own: NamedClasses, side: Side) -> None:
    """Say when ``--optimizer`` replaces the model's own, refuse a callback or logger whose
    package is missing, then give the run its defaults (``cnn.config.apply_run_defaults``)."""
    if note := override_note(section, own.model_name):
        print(f"note: {note}", file=sys.stderr)
    check_optional_packages(section.trainer.callbacks, section.trainer.logger)
    apply_run_defaults(section, subcommand, side.framework, side.logger_class, side.checkpoint_class,
                       fit_callbacks=side.fit_callbacks, checkpoint_suffix=side.checkpoint_suffix, own=own)


def begin_fit(trainer, model, ckpt_path: str | None) -> None:
    """A new run from ``model.init_from`` (a resume takes its checkpoint's weights), and the run
    folder made this process's before any of its files is written."""
    start_new_run_from(model, ckpt_path)
    if trainer.loggers and trainer.is_global_zero:
        own_run(trainer.log_dir)


def end_fit(trainer, model, datamodule, side: Side, started: float, test: Callable[[str], Any]) -> None:
    """The test of the best checkpoint (``test(best)``, ``cnn.runs.finish_fit``), then the run's
    settings for TensorBoard's HPARAMS tab."""
    if finish_fit(trainer, test, untestable_reason(model, datamodule, side.classes)):
        record_hparams(trainer, side.tensorboard_logger, side.framework, started)


def end_predict(trainer, model, datamodule, own: NamedClasses, side: Side, predictions,
                output: str | None) -> None:
    """Print (and with ``output`` write) the table of predictions (once, where every rank
    predicted every file); a user's model or data keep theirs, as in Lightning."""
    if own.model or own.data or (side.each_rank_predicts_all and not trainer.is_global_zero):
        return
    report_predictions(datamodule, predictions or [], predict_class_names(model.hparams, datamodule.dataset),
                       output)
