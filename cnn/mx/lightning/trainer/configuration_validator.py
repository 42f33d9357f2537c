"""Mirror of lightning.pytorch.trainer.configuration_validator: what an entry point needs of the module, checked
before the run starts."""

from __future__ import annotations

from typing import Any

from cnn.mx.lightning.utilities.exceptions import MisconfigurationException
from cnn.mx.lightning.utilities.model_helpers import is_overridden

_MINIMUM = ("Lightning `Trainer` expects as minimum a `training_step()`, `train_dataloader()` and "
            "`configure_optimizers()` to be defined.")


def _removed_epoch_end(model: Any, name: str, instead: str) -> None:
    """Lightning's refusal of a ``*_epoch_end`` hook removed in 2.0."""
    if callable(getattr(model, name, None)):
        raise NotImplementedError(
            f"Support for `{name}` has been removed in v2.0.0. `{type(model).__name__}` implements this method. You "
            f"can use the `{instead}` hook instead. To access outputs, save them in-memory as instance attributes. "
            "You can find migration examples in https://github.com/Lightning-AI/pytorch-lightning/pull/16520.")


def verify_loop_configurations(fn: str, model: Any) -> None:
    """Lightning's ``_verify_loop_configurations``: ``fit`` needs ``training_step`` and ``configure_optimizers``,
    ``validate``/``test`` their step (a ``MisconfigurationException`` in Lightning's words otherwise); the
    ``*_epoch_end`` hooks Lightning 2.0 removed are refused (``NotImplementedError``)."""
    if fn == "fit":
        if not is_overridden("training_step", model):
            raise MisconfigurationException(f"No `training_step()` method defined. {_MINIMUM}")
        if not is_overridden("configure_optimizers", model):
            raise MisconfigurationException(f"No `configure_optimizers()` method defined. {_MINIMUM}")
        _removed_epoch_end(model, "training_epoch_end", "on_train_epoch_end")
        _removed_epoch_end(model, "validation_epoch_end", "on_validation_epoch_end")
        return
    step = f"{'validation' if fn == 'validate' else fn}_step"
    if fn in ("validate", "test"):
        if not is_overridden(step, model):
            raise MisconfigurationException(f"No `{step}()` method defined to run `Trainer.{fn}`.")
        _removed_epoch_end(model, "validation_epoch_end" if fn == "validate" else "test_epoch_end",
                           "on_validation_epoch_end" if fn == "validate" else "on_test_epoch_end")
