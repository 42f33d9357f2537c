"""Mirror of lightning.pytorch.loops.fit_loop: the sanity check, then training epoch after epoch until a limit.

Epoch metrics are logged at the last batch's step (``batches_that_stepped - 1``) with an ``epoch`` scalar added;
monitoring callbacks (checkpoint, early stopping) get ``on_train_epoch_end`` after the module, as in Lightning.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cnn.mx.lightning.loops.progress import EpochProgress
from cnn.mx.lightning.loops.training_epoch_loop import TrainingEpochLoop
from cnn.mx.lightning.loops.utilities import is_limit_reached, set_sampler_epoch
from cnn.mx.lightning.trainer.call import call_callback_hooks, call_hooks, call_lightning_module_hook
from cnn.mx.lightning.utilities.seed import set_rng

import mlx.core as mx

from cnn.errors import TrainingInterrupted

# The keys of the flat ``loops.fit_loop`` dict older versions wrote, by where they live now.
_FLAT_BATCH_KEYS = ("batch_in_epoch", "batches_that_stepped", "pending_val", "total_batch_idx")


class FitLoop:
    """Lightning's ``_FitLoop``: owns :class:`EpochProgress` (``epoch_progress``) and the training epoch loop
    (``epoch_loop``). ``state_dict()`` is the resume point of this instant, which a checkpoint keeps under
    ``loops.fit_loop``; ``load_state_dict`` also reads the flat layout of older checkpoints."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.epoch_progress = EpochProgress()
        self.epoch_loop = TrainingEpochLoop(trainer)
        self.restarting = False  # resumed inside an epoch, or iteration-based: no sanity check

    def reset(self) -> None:
        """At the start of every fit: the counters are kept (a second ``fit()`` on the same trainer goes on from
        where the first stopped, as in Lightning), the schedulers just configured start at their first epoch."""
        self.restarting = False
        self.epoch_loop.accumulating = False
        for config in self.trainer.lr_scheduler_configs:
            config.last_epoch = 0

    @property
    def total_batch_idx(self) -> int:
        return self.epoch_loop.total_batch_idx

    @property
    def batch_idx(self) -> int:
        return self.epoch_loop.batch_idx

    @property
    def max_epochs(self) -> Any:
        """Lightning keeps the epoch limit on the fit loop (``trainer.max_epochs`` reads it); here the trainer
        holds it and this is the fit loop's name for it, which a second ``fit`` may raise."""
        return self.trainer.max_epochs

    @max_epochs.setter
    def max_epochs(self, max_epochs: Any) -> None:
        self.trainer.max_epochs = max_epochs

    @property
    def done(self) -> bool:
        trainer = self.trainer
        if trainer.num_training_batches == 0 or is_limit_reached(self.epoch_loop.global_step, trainer.max_steps):
            return True
        if is_limit_reached(self.epoch_progress.current, trainer.max_epochs):
            return True
        return trainer.should_stop and self.can_stop_early()

    def can_stop_early(self) -> bool:
        """``should_stop`` counts only once ``min_epochs`` and ``min_steps`` are reached."""
        trainer = self.trainer
        return self.epoch_progress.current >= trainer.min_epochs \
            and (not trainer.min_steps or self.epoch_loop.global_step >= trainer.min_steps)

    def run(self) -> None:
        trainer = self.trainer
        lc = trainer.logger_connector
        if trainer.enable_validation and trainer.num_sanity_val_steps > 0 and not self.restarting:
            key = mx.random.state[0]  # Lightning runs the sanity check under isolate_rng()
            trainer.sanity_checking, trainer.state.stage = True, "sanity_check"
            lc.reset_metrics()
            call_callback_hooks(trainer, "on_sanity_check_start")
            trainer.evaluation_loop.run("validate")
            call_callback_hooks(trainer, "on_sanity_check_end")
            lc.reset_metrics()
            trainer.sanity_checking = False
            set_rng(key)
        trainer.data_connector.setup_train_data()  # after the sanity check, as Lightning asks for the loaders
        trainer.state.stage = "train"
        if self.done or trainer.limit_train_batches == 0:
            return
        lc.active = "train"  # on_train_start logs into the first epoch's results, as in Lightning
        call_hooks(trainer, "on_train_start")
        while not self.done:
            with trainer.profiler.profile("run_training_epoch"):
                self.advance()
        call_hooks(trainer, "on_train_end")

    def advance(self) -> None:
        """One epoch of the training epoch loop, then the epoch-end bookkeeping."""
        trainer = self.trainer
        lc, loader = trainer.logger_connector, trainer.train_dataloader
        results = lc.results["train"]
        set_sampler_epoch(loader, self.epoch_progress.current)  # the project's loaders: exact mid-epoch resume
        start = self.epoch_loop.batch_progress.batch_in_epoch  # > 0 only when resuming inside this epoch
        lc.active = "train"  # results are reset at each epoch's end (and a run's start), so on_train_start's stay
        if start == 0:
            call_hooks(trainer, "on_train_epoch_start")
        self.epoch_loop.run(loader, start)
        self.on_advance_end(results)

    def on_advance_end(self, results: Any) -> None:
        trainer, progress = self.trainer, self.epoch_loop.batch_progress
        lc = trainer.logger_connector
        progress.phase, lc.in_step = "epoch_end", False
        call_callback_hooks(trainer, "on_train_epoch_end", monitoring=False)
        call_lightning_module_hook(trainer, "on_train_epoch_end")
        trainer.strategy.sync_epoch_results(results)  # before checkpointing and early stopping
        call_callback_hooks(trainer, "on_train_epoch_end", monitoring=True)
        trainer.strategy.agree_should_stop()
        lc.update_views(results.metrics(False))
        progress.batches_that_stepped -= 1  # Lightning logs epoch metrics at the last batch's step
        lc.log_metrics(results.metrics(False)["log"])
        progress.batches_that_stepped += 1
        results.reset()
        self.epoch_progress.current += 1
        progress.batch_in_epoch, progress.phase, lc.active = 0, "idle", None
        signals = trainer.signal_connector
        if signals.signal_to_stop(agree=True) is not None:
            raise TrainingInterrupted(signals.signal_to_stop(agree=False))

    def state_dict(self) -> dict[str, Any]:
        """Where a run restarted from this instant must continue (see ``BatchProgress.phase``), in Lightning's
        ``<loop>.<progress>`` keys."""
        epoch_loop = self.epoch_loop
        batch = replace(epoch_loop.batch_progress, phase="idle", is_last_batch=False, pending_val=False)
        epoch = self.epoch_progress.current
        phase = epoch_loop.batch_progress.phase
        if phase == "epoch_end":
            epoch, batch.batch_in_epoch = epoch + 1, 0
        elif phase in ("batch_end", "validation"):
            batch.batches_that_stepped += 0 if epoch_loop.accumulating else 1  # on_advance_end has not counted it
            batch.pending_val = phase == "batch_end" and epoch_loop.should_check_val(batch.batch_in_epoch - 1)
        results = self.trainer.logger_connector.results["train"]
        state = {"epoch_progress": EpochProgress(epoch).state_dict(),
                 "epoch_loop.batch_progress": batch.state_dict(),
                 "epoch_loop.automatic_optimization.optim_progress":
                     epoch_loop.automatic_optimization.optim_progress.state_dict(),
                 "epoch_loop.results": results.state_dict() if batch.batch_in_epoch else {}}
        if not self.trainer.lightning_module.automatic_optimization:  # absent otherwise: checkpoints as before
            state["epoch_loop.manual_optimization.optim_step_progress"] = \
                epoch_loop.manual_optimization.optim_step_progress.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (as :meth:`state_dict` wrote it, or the flat dict of older versions)."""
        if "batch_in_epoch" in state:
            state = {"epoch_progress": {"current": state["epoch"]},
                     "epoch_loop.batch_progress": {k: state[k] for k in _FLAT_BATCH_KEYS},
                     "epoch_loop.automatic_optimization.optim_progress": {"steps": state["global_step"]},
                     "epoch_loop.results": state["train_results"]}
        epoch_loop = self.epoch_loop
        self.epoch_progress.load_state_dict(state["epoch_progress"])
        epoch_loop.batch_progress.load_state_dict(state["epoch_loop.batch_progress"])
        epoch_loop.automatic_optimization.optim_progress.load_state_dict(
            state["epoch_loop.automatic_optimization.optim_progress"])
        if "epoch_loop.manual_optimization.optim_step_progress" in state:
            epoch_loop.manual_optimization.optim_step_progress.load_state_dict(
                state["epoch_loop.manual_optimization.optim_step_progress"])
        self.trainer.logger_connector.results["train"].load_state_dict(state["epoch_loop.results"])
        # Lightning skips the sanity check only when restarting inside an epoch or iteration-based (max_steps).
        progress = epoch_loop.batch_progress
        self.restarting = progress.batch_in_epoch > 0 or progress.pending_val or self.trainer.max_steps != -1
