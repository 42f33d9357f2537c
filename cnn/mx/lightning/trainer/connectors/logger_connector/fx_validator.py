"""Mirror of lightning.pytorch.trainer.connectors.logger_connector.fx_validator: which hooks may
``self.log`` and their ``on_step``/``on_epoch`` defaults (Lightning's ``_FxValidator.functions``)."""

from __future__ import annotations

from typing import Optional

_STEP_HOOKS = ("training_step", "on_train_batch_start", "on_train_batch_end", "on_before_backward",
               "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")
_EVAL_BATCH_HOOKS = ("validation_step", "test_step", "on_validation_batch_start", "on_validation_batch_end",
                     "on_test_batch_start", "on_test_batch_end")
_EPOCH_HOOKS = ("on_train_start", "on_validation_start", "on_test_start", "on_train_epoch_start",
                "on_train_epoch_end", "on_validation_epoch_start", "on_validation_epoch_end", "on_test_epoch_start",
                "on_test_epoch_end")


def default_log_levels(fx: Optional[str], on_step: Optional[bool], on_epoch: Optional[bool]) -> tuple[bool, bool]:
    """Lightning's ``_FxValidator.check_logging_and_get_default_levels`` for the hooks this trainer runs."""
    if fx in _STEP_HOOKS:
        defaults, step_allowed = (True, False), True
    elif fx in _EVAL_BATCH_HOOKS:
        defaults, step_allowed = (False, True), True
    elif fx in _EPOCH_HOOKS:
        defaults, step_allowed = (False, True), False
    else:
        raise ValueError(f"You can't `self.log()` inside `{fx}`.")
    on_step = defaults[0] if on_step is None else on_step
    on_epoch = defaults[1] if on_epoch is None else on_epoch
    if on_step and not step_allowed:
        raise ValueError(f"You can't `self.log(on_step=True)` inside `{fx}`.")
    if not on_step and not on_epoch:
        raise ValueError("`self.log(on_step=False, on_epoch=False)` is not useful.")
    return on_step, on_epoch
