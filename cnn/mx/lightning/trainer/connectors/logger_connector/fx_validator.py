"""Mirror of lightning.pytorch.trainer.connectors.logger_connector.fx_validator: which hooks may ``self.log`` and
their ``on_step``/``on_epoch`` defaults (Lightning's ``_FxValidator.functions``), with Lightning's messages."""

from __future__ import annotations

from typing import Optional, TypedDict, Union

from cnn.mx.lightning.utilities.exceptions import MisconfigurationException


class LogOptions(TypedDict):
    allowed_on_step: Union[tuple[bool], tuple[bool, bool]]
    allowed_on_epoch: Union[tuple[bool], tuple[bool, bool]]
    default_on_step: bool
    default_on_epoch: bool


_STEP = LogOptions(allowed_on_step=(False, True), allowed_on_epoch=(False, True), default_on_step=True,
                   default_on_epoch=False)
_EVAL_STEP = LogOptions(allowed_on_step=(False, True), allowed_on_epoch=(False, True), default_on_step=False,
                        default_on_epoch=True)
_EPOCH = LogOptions(allowed_on_step=(False,), allowed_on_epoch=(True,), default_on_step=False, default_on_epoch=True)

_STEP_HOOKS = ("on_before_backward", "backward", "on_after_backward", "on_before_optimizer_step", "optimizer_step",
               "configure_gradient_clipping", "clip_gradients", "on_before_zero_grad", "optimizer_zero_grad",
               "on_train_batch_start", "on_train_batch_end", "training_step")
_EVAL_STEP_HOOKS = ("on_validation_batch_start", "on_validation_batch_end", "on_test_batch_start",
                    "on_test_batch_end", "validation_step", "test_step")
_EPOCH_HOOKS = ("on_train_start", "on_validation_start", "on_test_start", "on_train_epoch_start",
                "on_train_epoch_end", "on_validation_epoch_start", "on_validation_epoch_end", "on_test_epoch_start",
                "on_test_epoch_end")
_NO_LOG_HOOKS = ("lr_scheduler_step", "on_fit_start", "on_fit_end", "on_sanity_check_start", "on_sanity_check_end",
                 "on_train_end", "on_validation_end", "on_test_end", "on_predict_start", "on_predict_end",
                 "on_predict_epoch_start", "on_predict_epoch_end", "on_before_batch_transfer",
                 "transfer_batch_to_device", "on_after_batch_transfer", "on_predict_batch_start",
                 "on_predict_batch_end", "on_exception", "state_dict", "on_save_checkpoint", "on_load_checkpoint",
                 "load_state_dict", "setup", "teardown", "configure_sharded_model", "configure_model",
                 "predict_step", "configure_optimizers", "train_dataloader", "val_dataloader", "test_dataloader",
                 "prepare_data", "configure_callbacks", "on_validation_model_zero_grad", "on_validation_model_eval",
                 "on_test_model_eval", "on_validation_model_train", "on_test_model_train")


class FxValidator:
    """Lightning's ``_FxValidator``: ``functions`` maps every hook to its logging options (``None``: no logging)."""

    functions: dict[str, Optional[LogOptions]] = {
        **{fx: _STEP for fx in _STEP_HOOKS}, **{fx: _EVAL_STEP for fx in _EVAL_STEP_HOOKS},
        **{fx: _EPOCH for fx in _EPOCH_HOOKS}, **{fx: None for fx in _NO_LOG_HOOKS}}

    @classmethod
    def check_logging(cls, fx_name: str) -> None:
        """Raise where ``fx_name`` may not log."""
        if fx_name not in cls.functions:
            raise RuntimeError(f"Logging inside `{fx_name}` is not implemented."
                               " Please, open an issue in `https://github.com/Lightning-AI/pytorch-lightning/issues`.")
        if cls.functions[fx_name] is None:
            raise MisconfigurationException(
                f"You can't `self.log()` inside `{fx_name}`. HINT: You can still log directly to the logger by using"
                " `self.logger.experiment`.")

    @classmethod
    def get_default_logging_levels(cls, fx_name: str, on_step: Optional[bool],
                                   on_epoch: Optional[bool]) -> tuple[bool, bool]:
        fx_config = cls.functions[fx_name]
        assert fx_config is not None
        on_step = fx_config["default_on_step"] if on_step is None else on_step
        on_epoch = fx_config["default_on_epoch"] if on_epoch is None else on_epoch
        return on_step, on_epoch

    @classmethod
    def check_logging_levels(cls, fx_name: str, on_step: bool, on_epoch: bool) -> None:
        fx_config = cls.functions[fx_name]
        assert fx_config is not None
        m = "You can't `self.log({}={})` inside `{}`, must be one of {}."
        if on_step not in fx_config["allowed_on_step"]:
            raise MisconfigurationException(m.format("on_step", on_step, fx_name, fx_config["allowed_on_step"]))
        if on_epoch not in fx_config["allowed_on_epoch"]:
            raise MisconfigurationException(m.format("on_epoch", on_epoch, fx_name, fx_config["allowed_on_epoch"]))

    @classmethod
    def check_logging_and_get_default_levels(cls, fx_name: str, on_step: Optional[bool],
                                             on_epoch: Optional[bool]) -> tuple[bool, bool]:
        """Lightning's: ``fx_name`` may log, and the ``(on_step, on_epoch)`` it logs at."""
        cls.check_logging(fx_name)
        on_step, on_epoch = cls.get_default_logging_levels(fx_name, on_step, on_epoch)
        cls.check_logging_levels(fx_name, on_step, on_epoch)
        return on_step, on_epoch
