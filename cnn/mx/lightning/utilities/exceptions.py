"""Mirror of lightning.pytorch.utilities.exceptions: ``MisconfigurationException``, what Lightning raises for a
misuse of its API (an argument out of range, flags that exclude each other)."""

from __future__ import annotations


class MisconfigurationException(ValueError):
    """Exception used to inform users of misuse with Lightning. A ``ValueError`` too: the MLX CLI turns the
    ``ValueError`` of a Trainer or callback it builds into one ``error:`` line."""
