"""Mirror of lightning.pytorch.trainer: the ``Trainer`` and what it delegates to (connectors, states, hook calls).

``Trainer`` is imported on first use: the module and the loops import the connectors below this package, and the
``Trainer`` imports them, so an eager import here would run in a circle.
"""

from typing import Any

__all__ = ["Trainer"]


def __getattr__(name: str) -> Any:
    if name == "Trainer":
        from cnn.mx.lightning.trainer.trainer import Trainer

        return Trainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
