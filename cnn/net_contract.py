"""The contract of a ``model.net`` (docs/models.md), checked on both sides at the first step.

A network of the user's that breaks it -- an output that is not one ``(N, num_classes)`` array
(seven classes for ten, a tuple), or no parameters to train -- would fail deep inside the loss or
the optimizer with a traceback; ``check_output`` and ``check_parameters`` say which rule it
broke in one ``ConfigError`` line, naming the network's class.
"""

from __future__ import annotations

from typing import Any

from cnn.errors import ConfigError

RULE = "docs/models.md: a model.net returns log-probabilities (N, num_classes) and has parameters to train"


def _name(net: Any) -> str:
    return f"{type(net).__module__}.{type(net).__qualname__}"


def check_output(output: Any, batch: int, num_classes: int, net: Any) -> None:
    """ConfigError unless ``output`` (what ``net`` returned for ``batch`` images) is one array
    shaped ``(batch, num_classes)``."""
    shape = getattr(output, "shape", None)
    if shape is None:
        raise ConfigError(f"model.net {_name(net)} returned a {type(output).__name__}, not one array of "
                          f"log-probabilities ({RULE})")
    if tuple(shape) != (batch, num_classes):
        raise ConfigError(f"model.net {_name(net)} returned shape {tuple(shape)} for {batch} images of "
                          f"{num_classes} classes; it must be ({batch}, {num_classes}) ({RULE})")


def check_parameters(count: int, net: Any) -> None:
    """ConfigError when ``net`` has no parameters (``count``) for the optimizer to train."""
    if count == 0:
        raise ConfigError(f"model.net {_name(net)} has no parameters to train ({RULE})")
