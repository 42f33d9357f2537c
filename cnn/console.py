"""Where the terminal's cursor stands: a line a progress bar left open is ended before a message.

tqdm redraws its bar with ``\\r`` and no newline, so a line printed after a stop would be glued
to the end of the bar. ``track_line_ends`` wraps ``sys.stdout`` and ``sys.stderr`` (both show
on one terminal) in ``LineEnds``, which remember whether the last character written was a
newline; ``end_open_lines`` then ends the open ones. Standard library only.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator, TextIO


class LineEnds:
    """``stream`` as it is, remembering whether what was last written through it ended a line
    (``at_line_start``; true before any write)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.at_line_start = stream, True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:  # fileno, flush, isatty, encoding, ...
        return getattr(self.stream, name)


@contextlib.contextmanager
def track_line_ends() -> Iterator[None]:
    """Route ``sys.stdout`` and ``sys.stderr`` through ``LineEnds`` for the ``with`` block."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (s if isinstance(s, LineEnds) else LineEnds(s) for s in saved)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def end_open_lines() -> None:
    """End the line that ``sys.stdout`` or ``sys.stderr`` left open (a progress bar's), so the
    next message starts a line of its own."""
    for stream in (sys.stdout, sys.stderr):
        if not getattr(stream, "at_line_start", True):
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stream
                stream.write("\n")
                stream.flush()
