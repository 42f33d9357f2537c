"""Mirror of lightning.pytorch.utilities.exceptions: ``MisconfigurationException``."""

from cnn.errors import ConfigError


class MisconfigurationException(ConfigError, ValueError):
    """Lightning's ``MisconfigurationException``: a setting or a call the trainer cannot honour. Also the project's
    ``ConfigError`` (the CLI's one ``error:`` line) and a ``ValueError`` (what the mirror raised before, which callers
    may catch)."""
