"""Every Lightning internal the torch side uses, in one place, read from Lightning 2.5.6 and 2.6.6.

Lightning offers no public way to do these few things; each is an underscore member whose
meaning was read in the sources of ``lightning`` 2.5.6 and 2.6.6 (identical there), which is
the range ``pyproject.toml`` accepts (``>=2.5.6,<2.7``). ``tests/pt/test_lightning_internals.py``
checks that the installed Lightning still has every one of them, so an upgrade that drops or
renames one fails a test instead of silently changing what is logged or saved.

Called (wrapped by the functions below):

* ``trainer.fit_loop._should_accumulate()`` (``loops/fit_loop.py``) and
  ``trainer._logger_connector.should_update_logs``
  (``trainer/connectors/logger_connector/logger_connector.py``): together the condition of
  ``_LoggerConnector.update_train_step_metrics``, i.e. whether this step's metrics are written
  to the loggers (``train_step_is_written``).
* ``LightningModule._current_fx_name`` (``core/module.py``): the hook ``self.log`` files a value
  under (``logging_as``).
* ``ModelCheckpoint._should_save_on_train_epoch_end``, ``_should_skip_saving_checkpoint``,
  ``_monitor_candidates`` and ``_save_last_checkpoint`` (``callbacks/model_checkpoint.py``):
  when the callback saves, and writing ``last`` (``saves_on_train_epoch_end``,
  ``save_last_checkpoint``).

* ``TensorBoardLogger._version`` (``fabric/loggers/tensorboard.py``): the version directory's
  number once chosen, None before (``chosen_version``; the public ``version`` chooses one).

* ``_SubprocessScriptLauncher.procs`` (``strategies/launchers/subprocess_script.py``): the rank
  processes ``ddp`` started from rank zero (``exited_ranks``).

Replaced on the class (``report_dead_ranks``):

* ``_ChildProcessObserver._terminate_all`` (``fabric/strategies/launchers/subprocess_script.py``):
  what rank zero's watcher thread does once a rank it started has exited non-zero (Lightning:
  SIGKILL every rank, this one included, without a line).

Overridden in a subclass (the override is where the subclass is; the name is listed here):

* ``TensorBoardLogger._get_next_version`` (``loggers/tensorboard.py``), in
  ``cnn.pt.run_files.TensorBoardLogger``.
* ``LightningCLI._parse_ckpt_path``, ``LightningCLI._prepare_subcommand_parser`` and
  ``LightningCLI._run_subcommand`` (``cli.py``), in ``cnn.pt.cli.CLI``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from lightning.fabric.loggers import TensorBoardLogger as FabricTensorBoardLogger
from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.loops.fit_loop import _FitLoop
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from lightning.pytorch.trainer.connectors.logger_connector.logger_connector import _LoggerConnector

READ_FROM = ("2.5.6", "2.6.6")

# (Lightning class, member) for every internal named above; the test asks each class for each.
CALLED = (
    (_FitLoop, "_should_accumulate"),
    (_LoggerConnector, "should_update_logs"),
    (ModelCheckpoint, "_should_save_on_train_epoch_end"),
    (ModelCheckpoint, "_should_skip_saving_checkpoint"),
    (ModelCheckpoint, "_monitor_candidates"),
    (ModelCheckpoint, "_save_last_checkpoint"),
)
OVERRIDDEN = (
    (TensorBoardLogger, "_get_next_version"),
    (LightningCLI, "_parse_ckpt_path"),
    (LightningCLI, "_prepare_subcommand_parser"),
    (LightningCLI, "_run_subcommand"),
    (_ChildProcessObserver, "_terminate_all"),
)
# Instance attributes set in ``__init__`` (not on the class): (class, attribute).
INSTANCE_ATTRIBUTES = (
    (LightningModule, "_current_fx_name"),
    (FabricTensorBoardLogger, "_version"),
    (_SubprocessScriptLauncher, "procs"),
    (_ChildProcessObserver, "_child_processes"),
    (_ChildProcessObserver, "_termination_signal"),
)


def train_step_is_written(trainer, automatic_optimization: bool) -> bool:
    """Whether Lightning writes this training step's metrics to the loggers: the condition of
    ``_LoggerConnector.update_train_step_metrics``, to be read at the same loop position (during
    the step or its ``on_train_batch_end``, before the step's metrics are written)."""
    if trainer.fit_loop._should_accumulate() and automatic_optimization:
        return False
    return bool(trainer._logger_connector.should_update_logs or trainer.fast_dev_run)


@contextmanager
def logging_as(module: LightningModule, hook_name: str) -> Iterator[None]:
    """``self.log`` inside the block files its values under ``hook_name``'s result entry."""
    previous, module._current_fx_name = module._current_fx_name, hook_name
    try:
        yield
    finally:
        module._current_fx_name = previous


def saves_on_train_epoch_end(callback: ModelCheckpoint, trainer) -> bool:
    """Whether ``callback`` checkpoints at a training epoch's end (else after validation)."""
    return callback._should_save_on_train_epoch_end(trainer)


def save_last_checkpoint(callback: ModelCheckpoint, trainer) -> None:
    """Write ``callback``'s ``last`` checkpoint now, unless this step was saved already (then
    ``last`` was written with it), or the trainer is not fitting, sanity checking, or in a
    ``fast_dev_run``."""
    if not callback._should_skip_saving_checkpoint(trainer):
        callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def chosen_version(logger: TensorBoardLogger) -> int | str | None:
    """``logger``'s version once one is chosen, None before: reading ``version`` would choose one
    (and claim its directory)."""
    return logger._version


def exited_ranks(trainer) -> list[tuple[int, int]]:
    """``(local rank, exit status)`` of each rank process that ``ddp`` started from this one (rank
    zero of a node starts the others) and that has exited non-zero; empty on the other ranks."""
    procs = getattr(trainer.strategy.launcher, "procs", None) or []
    return [(i + 1, proc.poll()) for i, proc in enumerate(procs) if proc.poll()]


def report_dead_ranks(report: Callable[[int, int], None]) -> None:
    """Rank zero's watcher thread, once a rank it started exits non-zero, kills the other ranks it
    started (as Lightning does), then calls ``report(local rank, exit status)`` where Lightning
    would SIGKILL this process without a word."""
    def terminate_all(observer: _ChildProcessObserver) -> None:
        children = observer._child_processes
        for proc in children:
            proc.send_signal(observer._termination_signal)
        local_rank, status = next((i + 1, p.returncode) for i, p in enumerate(children) if p.returncode)
        report(local_rank, status)

    _ChildProcessObserver._terminate_all = terminate_all
