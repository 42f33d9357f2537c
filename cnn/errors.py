"""Errors a user can cause outside the data layer; each message is one line to act on."""


class ConfigError(Exception):
    """A config key, value, framework or checkpoint that does not fit this run."""
