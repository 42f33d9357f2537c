"""Mirror of lightning.pytorch.trainer.configuration_validator: what an entry point needs of the module, checked
before the run starts."""

from __future__ import annotations

from typing import Any

from cnn.mx.lightning.core.module import is_overridden


def verify_loop_configurations(fn: str, model: Any) -> None:
    """Lightning's ``__verify_eval_loop_configuration`` for ``validate`` and ``test``: a ``ValueError`` when
    ``model`` defines no ``validation_step`` (``test_step``) for them to run."""
    step = f"{'validation' if fn == 'validate' else fn}_step"
    if fn in ("validate", "test") and not is_overridden(step, model):
        raise ValueError(f"No `{step}()` method defined to run `Trainer.{fn}`.")
