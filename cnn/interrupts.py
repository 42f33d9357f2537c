"""SIGINT/SIGTERM outside training: ``validate``, ``test``, ``predict`` and the test that ends ``fit``.

Training stops at a batch boundary and saves a checkpoint (each side's trainer does that). An
evaluation has nothing to save, so here a signal stops it at once: ``stop_on_signals`` raises
``cnn.errors.Interrupted`` from the handler, which ends the command with one line and exit
status 128 + signum. Nothing it would have written is written, and a file it would have
replaced (``predict --output``) stays whole, as every write is atomic (``cnn.atomic``).
Standard library only; both sides' CLIs use it.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from typing import Iterator

from cnn.errors import Interrupted


@contextlib.contextmanager
def stop_on_signals(what: str, hint: str) -> Iterator[None]:
    """Within the block, SIGINT or SIGTERM raises ``Interrupted(signum, what, hint)``.

    Handlers a trainer installs inside the block take over while they are installed (Lightning
    calls the handler found here after its own SIGTERM notice). A signal whose exception was
    swallowed where it landed (a finalizer) is raised again when the block ends. Only the main
    thread can install handlers; elsewhere the block runs unguarded.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    received: list[int] = []

    def handler(signum: int, frame) -> None:
        received.append(signum)
        raise Interrupted(signum, what, hint)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
    # the handler's exception can be swallowed where it lands: a finalizer (``__del__`` of a
    # progress bar or an iterator the collector frees then) only prints it; the signal still
    # ends the command
    if received:
        raise Interrupted(received[0], what, hint)


def hold_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on: the command is ending, and a second Ctrl-C while
    its last line is printed would only turn that line into a traceback. Main thread only."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def evaluation_stops(command: str) -> contextlib.AbstractContextManager:
    """``stop_on_signals`` for ``validate``, ``test`` or ``predict``."""
    kept = ("no predictions were printed or written (an existing --output file is unchanged)"
            if command == "predict" else "no metrics were logged")
    return stop_on_signals(command, kept)


def final_test_stops(best: str) -> contextlib.AbstractContextManager:
    """``stop_on_signals`` for the test that ends ``fit``, when training has finished."""
    return stop_on_signals("the test that ends fit",
                           f"training had finished and its checkpoints are kept: test the best "
                           f"with --ckpt_path {shlex.quote(best)}")
