"""Mirror of lightning.pytorch.utilities.exceptions: ``MisconfigurationException``, what Lightning raises for a
misuse of its API (an argument out of range, flags that exclude each other)."""

from __future__ import annotations

from cnn.errors import ConfigError


class MisconfigurationException(ConfigError, ValueError):
    """Lightning's ``MisconfigurationException``: a setting or a call the trainer cannot honour. Also the project's
    ``ConfigError`` (the CLI's one ``error:`` line) and a ``ValueError`` (what the mirror raised before, which callers
    may catch)."""
