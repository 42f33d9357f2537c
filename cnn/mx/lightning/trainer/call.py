"""Mirror of lightning.pytorch.trainer.call: the hooks of the callbacks and the module, and the steps, called for
a trainer, as package-level functions (so loops, connectors and callbacks never touch the trainer's privates).

While a hook runs, the module's ``current_fx_name`` names it: ``self.log`` reads it for its defaults.

Hook order (module hook after the callbacks' unless noted), as in Lightning 2.6:
``fit``: prepare_data, setup(stage), [configure_model], [on_load_checkpoint, load_state_dict],
configure_optimizers, on_fit_start, on_sanity_check_start, <validation loop>, on_sanity_check_end,
on_train_start, per epoch: on_train_epoch_start, per batch: on_before_batch_transfer, transfer_batch_to_device,
on_after_batch_transfer, on_train_batch_start (-1: the epoch ends here), [optimizer_step (module) around:]
training_step, [on_before_zero_grad, optimizer_zero_grad (module), on_before_backward, on_after_backward,
on_before_optimizer_step, configure_gradient_clipping (module) -- eager mode only], [lr_scheduler_step
(module)], on_train_batch_end, [after the last batch:
on_validation_model_zero_grad (module), <validation loop>], on_train_epoch_end (callbacks, module, then
checkpoint/early-stopping callbacks); on_train_end, on_fit_end, teardown(stage). Validation loop:
on_validation_model_eval (module), on_validation_start, on_validation_epoch_start, per batch:
on_validation_batch_start, validation_step, on_validation_batch_end; on_validation_epoch_end,
on_validation_end, on_validation_model_train (module); each batch after the three transfer hooks.
``test``/``predict`` alike with their names. Checkpoint
saving calls every callback's ``state_dict``, then ``on_save_checkpoint`` (callbacks, module). Any exception
calls ``on_exception`` on the callbacks and finalizes loggers with "failed".

**Compiled mode**: backward and the optimizer step happen inside one compiled graph, so ``on_before_zero_grad``,
``on_before_backward``, ``on_after_backward`` and ``on_before_optimizer_step`` are *not called* (they are, in
Lightning's order, with ``compile=False``), nor are ``optimizer_step``, ``optimizer_zero_grad`` and
``configure_gradient_clipping`` unless overridden, which runs the training step eagerly (one warning when fit
starts). ``training_step`` is traced once per batch shape (see
:class:`~cnn.mx.lightning.core.module.LightningModule`).
"""

from __future__ import annotations

from typing import Any, Optional

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.callbacks.early_stopping import EarlyStopping
from cnn.mx.lightning.callbacks.model_checkpoint import ModelCheckpoint
from cnn.mx.lightning.callbacks.model_summary import ModelSummary
from cnn.mx.lightning.callbacks.progress.tqdm_progress import TQDMProgressBar
from cnn.mx.lightning.core.hooks import DataHooks, ModelHooks

# ModelCheckpoint hooks that may write or delete files: rank zero's alone (it computes the same paths).
CHECKPOINT_WRITING_HOOKS = frozenset({"on_train_batch_end", "on_train_epoch_end", "on_validation_end",
                                      "on_exception", "on_train_end"})


def runs_on_this_rank(trainer: Any, callback: Callback, hook: str) -> bool:
    """Whether ``callback.<hook>`` runs on this rank: all do on rank zero; elsewhere not the progress bar, the
    model summary, nor the file-writing hooks of ``ModelCheckpoint`` (its ``setup`` still finds ``dirpath``)."""
    if trainer.is_global_zero:
        return True
    if isinstance(callback, (TQDMProgressBar, ModelSummary)):
        return False
    return not (isinstance(callback, ModelCheckpoint) and hook in CHECKPOINT_WRITING_HOOKS)


def call_callback_hooks(trainer: Any, hook: str, *args: Any, monitoring: Optional[bool] = None,
                        **kwargs: Any) -> None:
    """Lightning's ``_call_callback_hooks``: ``callback.<hook>(trainer, module, *args)`` for every callback that
    runs on this rank, in order; ``monitoring`` True (False) limits it to (excludes) checkpoint and early stopping."""
    model = trainer.lightning_module
    prev, model.current_fx_name = model.current_fx_name, hook
    for cb in trainer.callbacks:
        is_monitor = isinstance(cb, (EarlyStopping, ModelCheckpoint))
        if (monitoring is None or monitoring == is_monitor) and runs_on_this_rank(trainer, cb, hook):
            with trainer.profiler.profile(f"[Callback]{cb.state_key}.{hook}"):
                getattr(cb, hook)(trainer, model, *args, **kwargs)
    model.current_fx_name = prev


def call_lightning_module_hook(trainer: Any, hook: str, *args: Any, **kwargs: Any) -> Any:
    """Lightning's ``_call_lightning_module_hook``: ``module.<hook>(*args)``, its result returned."""
    model = trainer.lightning_module
    prev, model.current_fx_name = model.current_fx_name, hook
    try:
        with trainer.profiler.profile(f"[LightningModule]{type(model).__name__}.{hook}"):
            return getattr(model, hook)(*args, **kwargs)
    finally:
        model.current_fx_name = prev


def call_batch_hook(trainer: Any, hook: str, *args: Any) -> Any:
    """Lightning's ``LightningModule._call_batch_hook``: a batch-transfer hook of the datamodule when it overrides
    it, else of the module; its result (the batch)."""
    datamodule = trainer.datamodule
    own = getattr(type(datamodule), hook, None) if datamodule is not None else None
    if own is not None and own is not getattr(DataHooks, hook):
        with trainer.profiler.profile(f"[LightningDataModule]{type(datamodule).__name__}.{hook}"):
            return getattr(datamodule, hook)(*args)
    return call_lightning_module_hook(trainer, hook, *args)


def call_hooks(trainer: Any, hook: str, *args: Any) -> None:
    """``hook`` on the callbacks, then on the module (Lightning's order for the hooks both have)."""
    call_callback_hooks(trainer, hook, *args)
    call_lightning_module_hook(trainer, hook, *args)


def call_strategy_hook(trainer: Any, hook: str, *args: Any, **kwargs: Any) -> Any:
    """Lightning's ``_call_strategy_hook``: ``trainer.strategy.<hook>(*args)``, profiled as
    ``[Strategy]<class>.<hook>``, its result returned."""
    strategy = trainer.strategy
    with trainer.profiler.profile(f"[Strategy]{type(strategy).__name__}.{hook}"):
        return getattr(strategy, hook)(*args, **kwargs)


def call_evaluation_step(trainer: Any, hook: str, batch: Any, batch_idx: int) -> Any:
    """The strategy's ``validation_step``/``test_step``/``predict_step``: the step's output; its logged values
    go to the active results."""
    out, logs, metas = call_strategy_hook(trainer, hook, batch, batch_idx)
    trainer.logger_connector.feed(logs, metas)
    return out


def call_setup_hook(trainer: Any, stage: str) -> None:
    """Lightning's ``_call_setup_hook``: the loggers' directories (``logger.experiment``, made before ``setup`` as
    Lightning does), then ``setup(stage)`` of the datamodule, the callbacks and the module."""
    for lg in trainer.loggers:
        _ = getattr(lg, "experiment", None)
    if trainer.datamodule is not None and hasattr(trainer.datamodule, "setup"):
        trainer.datamodule.setup(stage=stage)
    call_callback_hooks(trainer, "setup", stage=stage)
    call_lightning_module_hook(trainer, "setup", stage=stage)


def call_configure_model(trainer: Any) -> None:
    """Lightning's ``_call_configure_model``: the module's ``configure_model``, when it overrides it."""
    model = trainer.lightning_module
    if type(model).configure_model is not ModelHooks.configure_model:
        call_lightning_module_hook(trainer, "configure_model")


def call_teardown_hook(trainer: Any, stage: str) -> None:
    """Lightning's ``_call_teardown_hook``: ``teardown(stage)`` of the datamodule, the callbacks and the module,
    then every logger finalized with "success"."""
    if trainer.datamodule is not None and hasattr(trainer.datamodule, "teardown"):
        trainer.datamodule.teardown(stage=stage)
    call_callback_hooks(trainer, "teardown", stage=stage)
    call_lightning_module_hook(trainer, "teardown", stage=stage)
    for lg in trainer.loggers:
        lg.finalize("success")


def call_exception_hooks(trainer: Any, exception: BaseException) -> None:
    """Lightning's ``_interrupt``: ``on_exception`` of the callbacks and the datamodule, then every logger
    finalized with "failed"."""
    call_callback_hooks(trainer, "on_exception", exception)
    if trainer.datamodule is not None and hasattr(trainer.datamodule, "on_exception"):
        trainer.datamodule.on_exception(exception)
    for lg in trainer.loggers:
        lg.finalize("failed")


def call_and_handle_interrupt(trainer: Any, run_stage: Any, *args: Any) -> Any:
    """Lightning's ``_call_and_handle_interrupt``: ``run_stage(*args)``; on any exception (a signal's
    ``TrainingInterrupted`` too) the trainer is "interrupted", the signal handlers restored, ``on_exception``
    called and the loggers finalized with "failed" (``_interrupt``), then it propagates."""
    try:
        return run_stage(*args)
    except BaseException as exception:
        trainer.state.status = "interrupted"
        trainer.strategy.on_exception(exception)  # first: what it ignores, restore() leaves ignored
        trainer.signal_connector.restore()
        call_exception_hooks(trainer, exception)
        trainer.state.stage = None
        raise
    finally:
        trainer.logger_connector.active, trainer.logger_connector.in_step = None, False
