"""A run's ``version_N`` directory: claimed atomically, and removed again when the run failed
before it trained a step. Standard library only; both sides' loggers and CLIs use it.

Lightning picks "the highest ``version_N`` + 1" by listing the directory and creates it later,
so two runs started together pick the same number and write into one directory. Here the
number is taken by ``os.mkdir``, which exactly one process wins; the loser tries the next.
"""

from __future__ import annotations

import os
import re
import shutil

_CLAIMED: set[str] = set()  # version directories this process created
_VERSION = re.compile(r"^version_(\d+)$")
# What a run writes before its first step: the merged config (torch), its hyper-parameters and
# the (empty or header-only) event files. A directory holding anything else is never removed.
_START_FILES = re.compile(r"^(config\.yaml|hparams\.yaml|events\.out\.tfevents\..*)$")


def _versions(root: str) -> list[int]:
    try:
        entries = os.listdir(root)
    except OSError:
        return []
    return [int(m.group(1)) for e in entries if (m := _VERSION.match(e))
            and os.path.isdir(os.path.join(root, e))]


def claim_version(root: str) -> int:
    """Create ``root/version_N`` for the smallest ``N`` above every existing one and return
    ``N``; ``os.mkdir`` makes the claim, so concurrent runs each get their own directory."""
    os.makedirs(root, exist_ok=True)
    version = max(_versions(root), default=-1) + 1
    while True:
        try:
            path = os.path.join(root, f"version_{version}")
            os.mkdir(path)
            _CLAIMED.add(os.path.abspath(path))
            return version
        except FileExistsError:
            version += 1


def discard_unstarted(log_dir: str, keep: str | None = None) -> bool:
    """Remove ``log_dir`` when it holds only what a run writes before its first step (and
    empty folders), then its parents that became empty, up to ``keep`` (excluded); return
    whether it was removed. Anything else there (a checkpoint, a file of the user's) keeps
    the whole directory."""
    if not log_dir or not os.path.isdir(log_dir):
        return False
    for parent, _folders, files in os.walk(log_dir):
        if any(not _START_FILES.match(f) for f in files) or (files and parent != log_dir):
            return False
    shutil.rmtree(log_dir, ignore_errors=True)
    keep = os.path.abspath(keep) if keep else None
    parent = os.path.dirname(os.path.abspath(log_dir))
    while keep and parent.startswith(keep + os.sep):
        try:
            os.rmdir(parent)  # only an empty one
        except OSError:
            break
        parent = os.path.dirname(parent)
    return True


def discard_unstarted_run(trainer) -> None:
    """After a failed run: remove the version directory each of ``trainer``'s loggers claimed
    in this process (``claim_version``), if no training step was taken and nothing but
    start-up files is in it (rank zero only)."""
    if trainer is None or getattr(trainer, "global_step", 1) != 0 \
            or not getattr(trainer, "is_global_zero", True):
        return
    for logger in getattr(trainer, "loggers", None) or []:
        logger = getattr(logger, "logger", logger)  # a rank-zero-only wrapper's logger
        # ``_version`` is None while no directory was ever chosen: asking log_dir would claim one.
        version = getattr(logger, "_version", None)
        if isinstance(version, int) and os.path.abspath(
                os.path.join(logger.root_dir, f"version_{version}")) in _CLAIMED:
            discard_unstarted(logger.log_dir, keep=getattr(logger, "save_dir", None))
