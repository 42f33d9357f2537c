"""Callbacks the torch side's ``fit`` gets by default, for what the MLX trainer does natively.

``FaultGuard`` stops training the way the MLX trainer does:

* a NaN/inf training loss raises ``NonFiniteLossError`` before ``backward``, so the weights
  stay those of the last good step, and no checkpoint is written for it (every
  ``ModelCheckpoint``'s ``save_on_exception`` is switched off first);
* SIGINT or SIGTERM lets the current batch finish, with its validation if one is due, then
  stops ``fit`` with every ``ModelCheckpoint`` saving on the way out (Lightning's
  ``save_on_exception``, switched on by the signal), which leaves a resumable checkpoint; a
  second Ctrl-C stops at once, writing nothing (the last checkpoint stays). Mid-epoch the stop is Lightning's own
  (``SIGTERMException`` after the batch, the state its resume expects); the handlers here only
  pass the signal on to Lightning's once no validation can start before that check, because
  Lightning also checks inside a validation and would stop in its middle, losing its metrics
  and its checkpoint. After the last batch of an epoch the stop comes when the next epoch's
  first batch starts (or training ends) as ``TrainingInterrupted``. ``cnn.pt.cli`` reports
  either as ``TrainingInterrupted`` (exit status 128 + signal number). The handlers are only
  taken over in a single process; under DDP Lightning's, which reaches every rank, stay.

``ResumeState`` saves what a Lightning checkpoint lacks for an exact mid-epoch resume and the
MLX checkpoint holds: the random state (dropout masks) and the position in the train data.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from cnn.errors import NonFiniteLossError, TrainingInterrupted
from cnn.monitors import FirstValidationMonitorCheck
from cnn.runs import OPTIMIZERS_KEY, check_same_optimizers, optimizer_names


def _checkpoint_callbacks(trainer) -> list[ModelCheckpoint]:
    return [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]


def _validation_may_follow(trainer, batch_idx: int) -> bool:
    """Whether Lightning may validate after training batch ``batch_idx`` (epoch end included);
    errs on yes, which only defers the stop by a batch."""
    every = trainer.val_check_batch
    if batch_idx + 1 >= trainer.num_training_batches:
        return True
    return isinstance(every, (int, float)) and math.isfinite(every) and every >= 1 \
        and (batch_idx + 1) % int(every) == 0


class FaultGuard(L.Callback):
    """Stop ``fit`` cleanly on a non-finite loss or a signal (see the module docstring).

    ``on_exception`` of any other ``Exception`` after training steps lets every ``ModelCheckpoint`` save on the
    way out. Hooks: ``on_before_backward`` checks the loss (on every rank: one NaN stops them all);
    ``on_sanity_check_start`` / ``on_train_start`` install the signal handlers in place of
    Lightning's, which they call in due time: from ``on_train_batch_start`` /
    ``on_train_batch_end`` once no validation may come before Lightning checks for a signal;
    ``on_train_batch_start`` of an epoch's first batch and ``on_train_end`` raise
    ``TrainingInterrupted`` for a signal that came at an epoch's end; ``on_train_end`` /
    ``on_exception`` restore the handlers. ``signum``: the signal received, or None.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._passed_on = False
        self._batch_idx = 0
        self._lightning_handler: Any = None
        self._previous: dict[int, Any] = {}
        self._saved_on_exception: dict[int, bool] = {}

    # -- non-finite loss --------------------------------------------------------------------
    def on_before_backward(self, trainer, pl_module, loss) -> None:
        value = float(loss.detach())
        diverged = not math.isfinite(value)
        if trainer.world_size > 1:  # all ranks stop together, or the others hang in backward
            diverged = trainer.strategy.reduce_boolean_decision(diverged, all=False)
        if not diverged:
            return
        for callback in _checkpoint_callbacks(trainer):  # the last good checkpoint stays the last
            callback.save_on_exception = False
        raise NonFiniteLossError(
            f"training loss is {value if not math.isfinite(value) else 'not finite on a rank'} "
            f"at epoch {trainer.current_epoch}, batch {self._batch_idx} "
            f"(global step {trainer.global_step}); stopped without writing a checkpoint")

    # -- signals ------------------------------------------------------------------------------
    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._install(trainer)

    def on_train_start(self, trainer, pl_module) -> None:
        self._install(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._batch_idx = batch_idx
        if self.signum is not None and not self._passed_on and batch_idx == 0:
            raise TrainingInterrupted(self.signum)  # came at the previous epoch's end
        self._pass_on(trainer, batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._pass_on(trainer, batch_idx)

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()
        if self.signum is not None:
            raise TrainingInterrupted(self.signum)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore()
        # Any other error after training steps (a failing callback or logger, a misspelt monitor): every
        # ModelCheckpoint, which runs after this callback, saves the steps not yet saved, as the MLX side does.
        if isinstance(exception, Exception) and not isinstance(exception, NonFiniteLossError) \
                and trainer.global_step > 0 and not trainer.sanity_checking:
            for callback in _checkpoint_callbacks(trainer):
                callback.save_on_exception = True

    def _pass_on(self, trainer, batch_idx: int) -> None:
        """Let Lightning stop after this batch, unless a validation may run before it checks."""
        if self.signum is None or self._passed_on or _validation_may_follow(trainer, batch_idx):
            return
        self._passed_on = True
        if callable(self._lightning_handler):
            self._lightning_handler(signal.SIGTERM, None)

    def _install(self, trainer) -> None:
        if self._previous or trainer.world_size > 1 \
                or threading.current_thread() is not threading.main_thread():
            return
        self.signum, self._passed_on = None, False
        self._lightning_handler = signal.getsignal(signal.SIGTERM)  # registered before training
        checkpoints = _checkpoint_callbacks(trainer)

        def handler(signum: int, frame) -> None:
            if self.signum is not None and signum == signal.SIGINT:
                for callback in checkpoints:  # a second Ctrl-C may land mid-step: save nothing
                    callback.save_on_exception = self._saved_on_exception[id(callback)]
                raise TrainingInterrupted(signum)  # at once (Lightning would exit 1 in silence)
            if self.signum is None:
                self._saved_on_exception = {id(c): c.save_on_exception for c in checkpoints}
            self.signum = signum
            for callback in checkpoints:
                callback.save_on_exception = True
            print(f"\nReceived {signal.Signals(signum).name}: stopping after the current batch "
                  "(saving a resumable checkpoint)", file=sys.stderr)

        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, handler)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


class ResumeState(L.Callback):
    """What a Lightning checkpoint misses for an exact mid-epoch resume; saved with every
    checkpoint, put in place when training starts from one (``on_train_start``: after the
    sanity check, before the first batch).

    * torch's CPU (and CUDA) random states: Lightning saves none, so a resumed run would draw
      other dropout masks;
    * the train stream's position ``{"epoch", "batches_done"}`` (the state of
      ``cnn.data.datamodule.TensorBatches``), counted from the batches trained, not fetched.
      Lightning saves the stream's own state with the fit loop but restores it only if the
      train data is loaded after the loops, and ``configure_optimizers`` reading
      ``estimated_stepping_batches`` (to size the lr schedule) loads it before: the resumed
      epoch would start from its first batch again;
    * the optimizers' class names (``cnn.runs.OPTIMIZERS_KEY``): a resume with another
      optimizer is refused before its state is restored (``check_same_optimizers``).
    """

    def __init__(self) -> None:
        self._position = (0, 0)  # (epoch, batches trained in it)
        self._loaded: dict[str, Any] | None = None
        self._saved_optimizers: list[str] | None = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch_rng": torch.get_rng_state(),
                                 "train_data": {"epoch": self._position[0],
                                                "batches_done": self._position[1]}}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = state_dict

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[OPTIMIZERS_KEY] = optimizer_names(trainer.optimizers)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        self._saved_optimizers = checkpoint.get(OPTIMIZERS_KEY)

    def on_fit_start(self, trainer, pl_module) -> None:
        # the optimizers exist, their state is not restored yet (torch would fail at a step)
        saved, self._saved_optimizers = self._saved_optimizers, None
        check_same_optimizers(saved, trainer.optimizers, trainer.ckpt_path)

    def on_train_start(self, trainer, pl_module) -> None:
        state, self._loaded = self._loaded, None
        self._position = (trainer.current_epoch, 0)
        if state is None:
            return
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        position = state["train_data"]
        self._position = (position["epoch"], position["batches_done"])
        loader = trainer.train_dataloader
        if hasattr(loader, "load_state_dict"):
            loader.load_state_dict(dict(position))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch != self._position[0]:
            self._position = (trainer.current_epoch, 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._position = (trainer.current_epoch, batch_idx + 1)


class MonitorCheck(FirstValidationMonitorCheck, L.Callback):
    """Hook: ``on_validation_end`` of ``fit``'s first validation (the sanity check's when there is one) raises
    ``MonitorError`` for a ``monitor`` of another callback that names no metric the model logs
    (``cnn.monitors.FirstValidationMonitorCheck``), where Lightning would raise only after an epoch; every
    ``ModelCheckpoint`` then saves on the way out (its ``save_on_exception``) when steps were trained."""

    def before_stopping(self, trainer) -> None:
        for callback in _checkpoint_callbacks(trainer):
            callback.save_on_exception = True
