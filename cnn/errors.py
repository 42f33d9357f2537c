"""Every error a user can cause, defined once for the core, both sides and the tools.

``cnn.cli`` catches these by type: each message is the one line a user needs to act on, shown
after ``error:`` without a traceback. Programming errors stay ``ValueError``/``TypeError``.
"""

from __future__ import annotations

import shlex
import signal


class ConfigError(Exception):
    """A config key, value, framework or checkpoint that does not fit this run."""


# Lightning's words for a ``val_check_interval`` longer than the training epoch: a ``ValueError`` its fit raises once
# it has counted the batches (the MLX mirror raises the same words).
_TRAINER_VALUE_ERRORS = ("must be less than or equal to the number of the training batches",)


def trainer_setting_error(error: BaseException) -> bool:
    """Whether ``error`` is Lightning's (or the MLX mirror's) refusal of a trainer setting, raised once a run has
    started: its ``MisconfigurationException``, or one of the ``ValueError``\\ s it raises for a flag. Both CLIs end
    it in one ``error:`` line."""
    return type(error).__name__ == "MisconfigurationException" \
        or (isinstance(error, ValueError) and any(words in str(error) for words in _TRAINER_VALUE_ERRORS))


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


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file where one was asked for; a ``FileNotFoundError`` too, as Lightning's."""


class CheckpointMismatchError(CheckpointError, RuntimeError):
    """A checkpoint's weights do not fit the module they are loaded into (a key missing or extra where loading is
    strict, a shape that differs); a ``RuntimeError`` too, which is what Lightning's (torch's) loading raises."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN/inf; training stopped, no checkpoint written for that step."""


class Interrupted(SystemExit):
    """SIGINT/SIGTERM stopped a command; the exit code is 128 + signum.

    ``signum``: the signal; ``what``: what stopped (``predict``, ``the test that ends fit``);
    ``hint``: what was kept and what to do next. ``str(error)`` is ``<what> interrupted by
    <SIGNAL>``; ``cnn.cli`` prints it with the hint as one ``error:`` line.
    """

    def __init__(self, signum: int, what: str, hint: str) -> None:
        super().__init__(128 + signum)
        self.signum, self.what, self._hint = signum, what, hint

    @property
    def hint(self) -> str:
        return self._hint

    def __str__(self) -> str:
        return f"{self.what} interrupted by {signal.Signals(self.signum).name}"


class TrainingInterrupted(Interrupted):
    """SIGINT/SIGTERM stopped ``fit`` at a batch boundary; the exit code is 128 + signum.

    ``signum``: the signal; ``checkpoint``: the file to resume from, or None when none was
    written (set by whoever knows it: the side's CLI, after the checkpoint callbacks ran).
    """

    def __init__(self, signum: int, checkpoint: str | None = None) -> None:
        super().__init__(signum, "training", "")
        self.checkpoint = checkpoint

    @property
    def hint(self) -> str:
        return (f"resume with --ckpt_path {shlex.quote(self.checkpoint)}" if self.checkpoint
                else "no checkpoint was written for this run")


class NonFiniteGradientError(NonFiniteLossError):
    """``detect_anomaly``: a parameter's gradient became NaN/inf; the message names the parameter, the epoch and the
    batch; training stopped, no checkpoint written for that step."""


class MonitorError(ConfigError, RuntimeError):
    """A callback's ``monitor`` names a metric the model does not log; the message lists those it does.
    A ``RuntimeError`` too, which is what Lightning's ``EarlyStopping`` raises for it."""


class PeerLostError(RuntimeError):
    """Another rank of a distributed run stopped (killed, crashed, its machine lost) while this rank
    needed it, so this rank stopped too; the exit status is 1.

    ``rank``/``world_size``: this process's; ``dead``: the rank that stopped, when known (the
    other one of two, or a rank this process started), else None ("a peer rank"); ``how``: how
    it stopped (``killed by SIGKILL``), when known; ``hint``: what to do next. ``str(error)`` is
    the one line ``cnn.cli`` prints.
    """

    def __init__(self, rank: int, world_size: int, dead: int | None, how: str | None,
                 hint: str) -> None:
        if dead is None and world_size == 2:
            dead = 1 - rank
        who = f"rank {dead} of {world_size}" if dead is not None else f"a peer rank of {world_size}"
        super().__init__(f"{who} stopped{f' ({how})' if how else ''}, so rank {rank} stopped too; {hint}")
        self.rank, self.world_size, self.dead = rank, world_size, dead


def exit_description(returncode: int) -> str:
    """A process's exit status in words: ``killed by SIGKILL`` for -9, ``exit status 1``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"
