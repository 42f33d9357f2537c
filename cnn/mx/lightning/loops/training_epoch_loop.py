"""Mirror of lightning.pytorch.loops.training_epoch_loop: the batches of one training epoch.

Validation runs inside the last training batch's ``on_advance_end``, i.e. *before* ``on_train_epoch_end``, as in
Lightning. Train step metrics are written when ``(batches_that_stepped + 1) % log_every_n_steps == 0`` (or
``should_stop``) at step ``batches_that_stepped`` (the index of the batch).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from cnn.mx.lightning.loops.optimization.automatic import AutomaticOptimization
from cnn.mx.lightning.loops.optimization.manual import ManualOptimization
from cnn.mx.lightning.loops.progress import BatchProgress
from cnn.mx.lightning.loops.utilities import is_limit_reached, transfer_batch
from cnn.mx.lightning.trainer.call import call_callback_hooks, call_hooks, call_lightning_module_hook

from cnn.errors import TrainingInterrupted


class TrainingEpochLoop:
    """Lightning's ``_TrainingEpochLoop``: per batch ``on_train_batch_start``, the step (backward and optimizer
    update in :class:`AutomaticOptimization`), the schedulers, ``on_train_batch_end``, the step's logs, then a
    validation when one is due. Owns :class:`BatchProgress` (``batch_progress``) and the automatic optimization."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.batch_progress = BatchProgress()
        self.automatic_optimization = AutomaticOptimization(trainer)
        self.manual_optimization = ManualOptimization(trainer)
        self.accumulating = False  # the current training batch only adds its gradients

    @property
    def global_step(self) -> int:
        """Optimizer steps taken (Lightning's ``global_step``), from the optimization the module chose."""
        model = self.trainer.lightning_module
        if model is not None and not model.automatic_optimization:
            return self.manual_optimization.optim_step_progress.steps
        return self.automatic_optimization.optim_progress.steps

    @property
    def batches_that_stepped(self) -> int:
        """The logger's step axis (Lightning's ``_batches_that_stepped``)."""
        return self.batch_progress.batches_that_stepped

    def reset(self) -> None:
        self.batch_progress = BatchProgress()
        self.automatic_optimization.reset()
        self.manual_optimization.reset()
        self.accumulating = False

    def run(self, loader: Any, start: int) -> None:
        """The batches ``start..`` of the epoch (``start`` > 0 only when resuming inside it)."""
        trainer, progress, n = self.trainer, self.batch_progress, self.trainer.num_training_batches
        batches = islice(iter(loader), start, n)
        if progress.pending_val:  # resumed from a checkpoint written at on_train_batch_end before validation ran
            progress.pending_val, progress.phase, progress.is_last_batch = False, "validation", start == n
            progress.batches_that_stepped -= 1  # the checkpoint counted the batch already (see FitLoop.state_dict)
            call_lightning_module_hook(trainer, "on_validation_model_zero_grad")
            self.run_validation()
            progress.batches_that_stepped += 1
        for batch_idx in range(start, n):
            if is_limit_reached(self.global_step, trainer.max_steps) \
                    or (trainer.should_stop and trainer.fit_loop.can_stop_early()):
                break
            with trainer.profiler.profile("[_TrainingEpochLoop].train_dataloader_next"):
                batch = next(batches)
            batch = transfer_batch(trainer, batch)
            if not self.run_batch(batch, batch_idx):
                break  # on_train_batch_start returned -1: the rest of the epoch is skipped
            if trainer.should_stop:
                for logger in trainer.loggers:
                    logger.save()
            training_done = progress.batch_in_epoch >= n or is_limit_reached(self.global_step, trainer.max_steps)
            signals = trainer.signal_connector
            if not training_done and signals.signal_to_stop(agree=False) is not None:
                raise TrainingInterrupted(signals.signal_to_stop(agree=False))

    def run_batch(self, batch: Any, batch_idx: int) -> bool:
        """One batch (Lightning's ``advance`` and ``on_advance_end``); ``False`` when ``on_train_batch_start``
        returned -1, which ends the epoch as Lightning's does: no step, no ``on_train_batch_end``, no validation
        (the schedulers step as after a batch)."""
        trainer, progress = self.trainer, self.batch_progress
        lc = trainer.logger_connector
        results = lc.results["train"]
        accumulating = self.should_accumulate(batch_idx)
        progress.is_last_batch, progress.phase = batch_idx + 1 == trainer.num_training_batches, "batch"
        progress.total_batch_idx += 1
        results.batch, results.batch_size, lc.in_step = batch, None, True
        call_callback_hooks(trainer, "on_train_batch_start", batch, batch_idx)
        if call_lightning_module_hook(trainer, "on_train_batch_start", batch, batch_idx) == -1:
            progress.batch_in_epoch, progress.is_last_batch = batch_idx + 1, True
            if not accumulating:
                self.update_lr_schedulers("step")
            self.update_lr_schedulers("epoch")
            results.batch = None
            progress.phase = "idle"
            return False
        with trainer.profiler.profile("run_training_batch"):
            if trainer.lightning_module.automatic_optimization:
                outputs = self.automatic_optimization.run(batch, batch_idx, accumulating)
            else:
                outputs = self.manual_optimization.run(batch, batch_idx)
        progress.batch_in_epoch, progress.phase = batch_idx + 1, "batch_end"
        self.accumulating = accumulating
        if not accumulating:
            self.update_lr_schedulers("step")
        if progress.is_last_batch:
            self.update_lr_schedulers("epoch")
        call_hooks(trainer, "on_train_batch_end", outputs, batch, batch_idx)
        lc.update_views(results.metrics(True))
        results.batch = None
        if not accumulating and lc.should_update_logs():
            lc.log_metrics(results.metrics(True)["log"])
        if self.should_check_val(batch_idx):  # the epoch loop's on_advance_end
            progress.phase = "validation"
            if not accumulating:
                call_lightning_module_hook(trainer, "on_validation_model_zero_grad")
            self.run_validation()
        if not accumulating:
            progress.batches_that_stepped += 1
        progress.phase, self.accumulating = "idle", False
        return True

    def run_validation(self) -> None:
        """The validation loop inside fit; ``should_stop`` agreed over the ranks after it (early stopping decides
        at ``on_validation_end``)."""
        trainer = self.trainer
        lc = trainer.logger_connector
        in_step = lc.in_step
        trainer.evaluation_loop.run("validate")
        trainer.strategy.agree_should_stop()
        trainer.state.stage, lc.active, lc.in_step = "train", "train", in_step

    def update_lr_schedulers(self, interval: str) -> None:
        """Lightning's ``update_lr_schedulers``: step the schedulers of ``interval`` ("step" or "epoch") whose
        frequency divides the batch (epoch) count; under manual optimization the module steps them itself."""
        if not self.trainer.lightning_module.automatic_optimization:
            return
        idx = self.batch_progress.batch_in_epoch if interval == "step" else self.trainer.current_epoch + 1
        for config in self.trainer.lr_scheduler_configs:
            if config.interval == interval and idx % config.frequency == 0:
                call_lightning_module_hook(self.trainer, "lr_scheduler_step", config, None)

    def should_accumulate(self, batch_idx: int) -> bool:
        """Lightning's ``_should_accumulate``: this batch only adds its gradients; the step comes later (the last
        batch of an epoch always steps)."""
        trainer = self.trainer
        return (batch_idx + 1) % trainer.accumulate_grad_batches != 0 and batch_idx + 1 != trainer.num_training_batches

    def should_check_val_epoch(self) -> bool:
        """Validation runs in this epoch (``check_val_every_n_epoch``)."""
        trainer = self.trainer
        return trainer.enable_validation and (trainer.check_val_every_n_epoch is None
                                              or (trainer.current_epoch + 1) % trainer.check_val_every_n_epoch == 0)

    def should_check_val(self, batch_idx: int) -> bool:
        """Lightning's ``_should_check_val_fx``: validation runs after batch ``batch_idx``."""
        trainer = self.trainer
        if not self.should_check_val_epoch():
            return False
        if trainer.should_stop and trainer.fit_loop.can_stop_early():
            return True
        vci, n = trainer.val_check_interval, trainer.num_training_batches
        every = vci if isinstance(vci, int) and not isinstance(vci, bool) else max(1, int(n * vci))
        current = self.batch_progress.total_batch_idx if trainer.check_val_every_n_epoch is None else batch_idx
        return (current + 1) % every == 0
