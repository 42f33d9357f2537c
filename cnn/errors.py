"""Every error a user can cause, defined once for the core, both sides and the tools.

``cnn.cli`` catches these by type: each message is the one line a user needs to act on, shown
after ``error:`` without a traceback. Programming errors stay ``ValueError``/``TypeError``.
"""

from __future__ import annotations

import signal


class ConfigError(Exception):
    """A config key, value, framework or checkpoint that does not fit this run."""


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


class CheckpointError(Exception):
    """A checkpoint file is missing, truncated, corrupt, of another kind, or cannot be resumed
    from; the message is one line naming the file."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN/inf; training stopped, no checkpoint written for that step."""


class TrainingInterrupted(SystemExit):
    """SIGINT/SIGTERM stopped ``fit`` at a batch boundary; the exit code is 128 + signum.

    ``signum``: the signal; ``checkpoint``: the file to resume from, or None when none was
    written (set by whoever knows it: the side's CLI, after the checkpoint callbacks ran).
    """

    def __init__(self, signum: int, checkpoint: str | None = None) -> None:
        super().__init__(128 + signum)
        self.signum, self.checkpoint = signum, checkpoint

    def __str__(self) -> str:
        return f"training interrupted by {signal.Signals(self.signum).name}"


class NonFiniteGradientError(NonFiniteLossError):
    """``detect_anomaly``: a parameter's gradient became NaN/inf; the message names the parameter, the epoch and the
    batch; training stopped, no checkpoint written for that step."""


class MonitorError(ConfigError, RuntimeError):
    """A callback's ``monitor`` names a metric the model does not log; the message lists those it does.
    A ``RuntimeError`` too, which is what Lightning's ``EarlyStopping`` raises for it."""
