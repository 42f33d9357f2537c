"""Opening a file a user named for reading: a regular file, never a FIFO, a device or a folder.

Reading a FIFO waits for a writer (for ever, in a run left in the background) and a device may
never end, so every path the program reads on a user's word -- an image to predict, a checkpoint
for ``convert``, ``--ckpt_path`` or ``--model.init_from``, a config file, a run folder's records --
is opened by ``open_regular``: with ``O_NONBLOCK``, so that the open itself returns at once, then
the kind of file is read from the open descriptor (not from a ``stat`` of the name, which could
change in between) and a blocking file is given back.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO


class NotRegularFile(OSError):
    """The path names a folder, a FIFO, a device or a socket; ``strerror`` says which in a few words
    (``a directory``, ``not a regular file``) and ``filename`` is the path."""


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for reading in binary mode if it is a regular file (or a link to one).

    Raises ``NotRegularFile`` for anything else, and the ``OSError`` of the open (a missing file:
    ``FileNotFoundError``; no permission: ``PermissionError``) as it comes."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            folder = stat.S_ISDIR(kind)
            raise NotRegularFile(errno.EISDIR if folder else errno.EINVAL,
                                 "a directory" if folder else "not a regular file", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: str | os.PathLike) -> None:
    """``open_regular(path)``'s errors, without keeping the file open: for a path another library
    opens itself (``mx.load``, ``torch.load``)."""
    open_regular(path).close()


def read_regular_text(path: str | os.PathLike) -> str:
    """The text (UTF-8) of the regular file at ``path``; ``open_regular``'s errors, and
    ``UnicodeDecodeError``."""
    with open_regular(path) as f:
        return f.read().decode()
