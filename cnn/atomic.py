"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

Every file this project writes for someone else to read (checkpoints, converted weights, plots,
confusion matrices, predictions, benchmark reports) goes through here. The protocol:

1. create a fresh, hidden temp file in the *target's own directory*;
2. let the writer fill it;
3. flush it to disk (``fsync``);
4. ``os.replace`` it over the target;
5. ``fsync`` the directory, so the rename itself is on disk too.

If the writer raises (including ``KeyboardInterrupt``), the temp file is removed and the target
is left exactly as it was. Only a hard kill (SIGKILL, power cut) between steps 1 and 4 can leave
a temp file behind; it is hidden (leading ``.``) and never has the target's name.

API:

* :func:`atomic_path` -- context manager yielding a temp *path*, for writers that want a file
  name (``mx.save_safetensors``, ``safetensors.save_file``, matplotlib's ``savefig``, PIL).
* :func:`write_bytes` / :func:`write_text` -- the whole content at once.
* :func:`remove_temp_files` -- the temp files a killed writer left in a directory.
* :func:`check_output` / :func:`output_target` -- the rule for a file a user names to be
  written (``--out``, ``--output``): an existing one is replaced only with ``--force`` (where the
  command has it), and a symbolic link is written through (the link stays, its target is
  replaced), as a shell's ``>`` would.

Standard library only (no numpy, torch or mlx), so both framework halves and the core use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from typing import Iterator

from cnn.errors import ConfigError

__all__ = ["atomic_path", "check_output", "output_target", "remove_temp_files", "write_bytes", "write_text"]

_ATTEMPTS = 100  # name collisions among 2**32 random names: never in practice
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[^.]*)?$")  # what _temp_name makes


def _temp_name(target: str) -> str:
    """``dir/.<stem>.<random>.tmp<ext>`` beside ``target``.

    The target's extension stays last because some writers choose the format from it or append
    it when missing (``mx.save_safetensors`` turns ``x.tmp`` into ``x.tmp.safetensors``; PIL and
    matplotlib pick the image format from the suffix).
    """
    directory, name = os.path.split(target)
    stem, ext = os.path.splitext(name)
    return os.path.join(directory, f".{stem}.{secrets.token_hex(4)}.tmp{ext}")


def _create_temp(target: str) -> str:
    """Create an empty temp file beside ``target`` and return its path.

    ``os.open(..., 0o666)`` rather than ``tempfile.mkstemp``: the kernel then applies the umask,
    so the final file gets the mode any new file would (e.g. 0644), not mkstemp's private 0600,
    without reading the process-wide umask (``os.umask`` has no read-only form, and setting it
    briefly would race with other threads). ``O_EXCL`` makes the name ours alone.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = _temp_name(target)
        try:
            os.close(os.open(tmp, flags, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {target}")


def _fsync_file(path: str) -> None:
    # fsync flushes the file (its inode), whichever descriptor wrote the data, so a fresh
    # read-only descriptor also covers data a library wrote through its own handle.
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory: str) -> None:
    # The rename is a change to the directory: without this a power cut right after
    # os.replace could bring back the old entry. Best effort: some filesystems (and
    # platforms) cannot open or fsync a directory, and the data itself is already safe.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_parents(directory: str) -> None:
    """``os.makedirs(directory, exist_ok=True)``; where one of its folders is a file, the
    ``NotADirectoryError`` names that file (``os.makedirs`` says ``File exists`` of it)."""
    try:
        os.makedirs(directory, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = directory
        while blocking and not os.path.exists(blocking):
            blocking = os.path.dirname(blocking)
        if blocking and not os.path.isdir(blocking):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", blocking) from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temp file path to write; on success it replaces ``path`` atomically.

    Contract:

    * The yielded ``str`` names an existing, empty, hidden file in ``path``'s directory, ending
      in ``path``'s extension (``last.safetensors`` -> ``.last.<random>.tmp.safetensors``).
      The writer may write it, truncate it or recreate it under the same name.
    * When the ``with`` block ends normally the file is fsync'ed, ``os.replace``'d over
      ``path`` (which need not exist) and the directory fsync'ed: ``path`` is then the complete
      new file, and at no moment was it missing or partial.
    * When the block raises (any ``BaseException``), the temp file is removed, the exception
      propagates and ``path`` is untouched (the previous file, or still no file). An ``OSError``
      about the temp file (a full disk, say) is raised again naming ``path`` instead.
    * Missing parent directories of ``path`` are created. The new file has the mode of any new
      file (``0o666 & ~umask``), whatever mode an existing ``path`` had.
    """
    # Same directory as the target: os.replace is atomic only within one filesystem, and a
    # temp file in /tmp may be on another one (rename would fail or degrade to copy+delete).
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    make_parents(directory)
    tmp = _create_temp(target)
    try:
        yield tmp
        # Data on disk *before* the rename makes it visible: otherwise a crash could leave a
        # truncated or empty file under the final name (the rename may reach disk first).
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException as error:
        # Also on KeyboardInterrupt / SystemExit: a Ctrl-C mid-save leaves no litter behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.errno and error.filename in (tmp, None):
            # the temp name means nothing to a user: say which file could not be written, and why
            raise type(error)(error.errno, error.strerror, target) from error
        raise
    _fsync_directory(directory)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Make ``path`` hold exactly ``data``, atomically (contract: :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Make ``path`` hold exactly ``text`` encoded with ``encoding``, atomically.

    Same contract as :func:`atomic_path`; newlines are translated as ``Path.write_text`` does
    (not at all on POSIX).
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding=encoding) as handle:
        handle.write(text)


def remove_temp_files(directory: str | os.PathLike[str]) -> list[str]:
    """Remove the temp files (names as :func:`atomic_path` makes them) in ``directory`` and
    return their paths. Only for a directory no live process writes to (a run folder whose
    lock this process holds: ``cnn.runs.own_run``): a live writer's temp file would go too."""
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if _TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed


def check_output(out: str | os.PathLike[str], force: bool, what: str = "file",
                 option: str = "--out") -> None:
    """``ConfigError`` unless ``out`` (a file a user named with ``option``) may be written: not a
    directory (``what`` is what to name instead), and not an existing file, or a link, unless
    ``force``. Commands that write a file a user names share this rule and these words."""
    if os.path.isdir(out):
        raise ConfigError(f"{option} {out} is a directory; name {what} to write")
    if os.path.lexists(out) and not force:
        raise ConfigError(f"{option} {out} exists; pass --force to replace it, or choose another file")


def output_target(path: str | os.PathLike[str]) -> str:
    """The file to write for a user's output ``path``: a symbolic link's final target (written
    atomically there, the link stays and shows the new file), else ``path`` itself."""
    return os.path.realpath(path) if os.path.islink(path) else os.fspath(path)
