"""A callback's ``monitor`` checked against what the model logs, at the first validation of ``fit``.

Lightning finds a misspelt ``monitor`` only where a checkpoint or an early-stopping check needs it, after a
whole epoch. Both sides check it instead at the end of the first validation (the sanity check's, before any
training step, unless ``num_sanity_val_steps`` is 0): every validation metric is logged by then, and the
training metrics, logged later in an epoch, are known by name from the model (its ``training_tags``: the
project's Classifiers declare ``schema.TRAINING_TAGS``; a user's model declaring none, what it logged).
``FirstValidationMonitorCheck`` is that check as a callback's hook, which each side's ``MonitorCheck`` takes with
its framework's ``Callback``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

from cnn.errors import MonitorError

# What Lightning's ModelCheckpoint adds to the metrics itself (its file names may use them).
CHECKPOINT_TAGS = ("epoch", "step")


def training_tags(module: Any) -> tuple[str, ...]:
    """What ``module`` logs only once training is under way, by its ``training_tags`` attribute (none if absent)."""
    return tuple(getattr(module, "training_tags", ()))


def unknown_monitor_line(callbacks: Iterable[Any], logged: Iterable[str], global_step: int,
                         training: Iterable[str] = ()) -> Optional[str]:
    """The one line for the first callback whose ``monitor`` is neither in ``logged`` nor in ``training`` (the
    model's training metrics, :func:`training_tags`), or None.

    ``global_step``: the steps trained so far (the line then says ``last`` keeps them)."""
    known = sorted({*logged, *training, *CHECKPOINT_TAGS})
    for callback in callbacks:
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor not in known:
            kept = f"; the {global_step} steps trained are saved in the run's `last` checkpoint" if global_step else ""
            return (f"{type(callback).__name__}(monitor={monitor!r}) names a metric the model does not log; "
                    f"it logs: {', '.join(known)}{kept}")
    return None


class FirstValidationMonitorCheck:
    """Hook: ``on_validation_end`` of ``fit``'s first validation (the sanity check's when there is one) raises
    ``MonitorError`` for a ``monitor`` of another callback that names no metric the model logs
    (``unknown_monitor_line``), after ``before_stopping(trainer)``. Mixed into a framework's ``Callback`` by each
    side, which may override ``before_stopping``."""

    def __init__(self) -> None:
        self.checked = False

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self.checked or trainer.state.fn != "fit":
            return
        self.checked = True
        # a ReduceLROnPlateau scheduler (--lr_scheduler) carries a monitor too
        watchers = [*trainer.callbacks, *(config.scheduler for config in trainer.lr_scheduler_configs)]
        line = unknown_monitor_line(watchers, trainer.callback_metrics, trainer.global_step, training_tags(pl_module))
        if line is None:
            return
        self.before_stopping(trainer)
        raise MonitorError(line)

    def before_stopping(self, trainer: Any) -> None:
        """What a side does before the ``MonitorError`` is raised (nothing here)."""
