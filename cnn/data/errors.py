"""The one exception the data layer raises for problems a user can fix."""

from __future__ import annotations


class DataError(Exception):
    """A dataset or image file is missing, damaged or unusable.

    Contract: ``str(error)`` is exactly one line that says what is wrong, which file or
    directory it concerns, and what to do about it, so a command-line tool can print it as
    is, without a traceback. Programming errors (bad arguments) stay ``ValueError`` /
    ``TypeError``; ``DataError`` is only for what the user's files or network caused.
    """

    def __init__(self, message: str):
        # Causes such as OSError texts may carry newlines; the contract is one line.
        super().__init__(" ".join(str(message).split()))
