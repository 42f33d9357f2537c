"""A run's ``version_N`` directory: claimed atomically, owned by one live ``fit``, searched for
the checkpoint to resume, and removed again when the run failed before it trained a step.
Standard library only; both sides' loggers and CLIs use it.

Lightning picks "the highest ``version_N`` + 1" by listing the directory and creates it later,
so two runs started together pick the same number and write into one directory. Here the
number is taken by ``os.mkdir``, which exactly one process wins; the loser tries the next.
A ``fit`` then owns its directory through ``flock``, which the kernel drops when the process
ends however it ends, so a second ``fit --ckpt_path last`` of a running run is refused and the
run of a killed one is free at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickletools
import re
import shlex
import shutil
import struct
import sys
import zipfile
from pathlib import Path
from typing import Callable

from cnn.atomic import atomic_path, remove_temp_files
from cnn.errors import CheckpointError, ConfigError, PeerLostError
from cnn.interrupts import final_test_stops, stop_on_signals

_CLAIMED: set[str] = set()  # version directories this process created
_OWNED: dict[str, int] = {}  # run directory -> the descriptor holding its flock
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
    start-up files is in it; from a folder it did not claim (a resumed run's), the events files
    this process wrote there with nothing logged (``remove_own_empty_events``). Rank zero only."""
    if trainer is None or not getattr(trainer, "is_global_zero", True):
        return
    for logger in getattr(trainer, "loggers", None) or []:
        logger = getattr(logger, "logger", logger)  # a rank-zero-only wrapper's logger
        # None while no directory was ever chosen (asking log_dir would claim one), and for a
        # logger that never claims one (not ours)
        version = getattr(logger, "chosen_version", None)
        if version is None:
            continue
        claimed = isinstance(version, int) and os.path.abspath(
            os.path.join(logger.root_dir, f"version_{version}")) in _CLAIMED
        if claimed and getattr(trainer, "global_step", 1) == 0:
            discard_unstarted(logger.log_dir, keep=getattr(logger, "save_dir", None))
        elif not claimed:  # a resumed run's folder: only what this process left in it, unused
            remove_own_empty_events(logger.log_dir)


class ConfigWrittenWhenTrainingStarts:
    """Mixed into both sides' ``SaveConfigCallback``: with ``resumed`` set (a ``fit`` with a
    ``--ckpt_path``) ``config.yaml`` is written when training starts, not at ``setup``, so a
    resume refused once the checkpoint is read (another optimizer, a checkpoint that does not
    fit) leaves the run's file saying what it was trained with. Any other run writes it at
    ``setup``, as Lightning does."""

    resumed = False
    _training_started = False

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.resumed and not self._training_started:
            return
        super().setup(trainer, pl_module, stage)

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self._training_started = True
        self.setup(trainer, pl_module, "fit")


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data):
        byte = data[at]
        value, shift, at = value | (byte & 0x7F) << shift, shift + 7, at + 1
        if not byte & 0x80:
            break
    return value, at


def _event_fields(event: bytes) -> set[int]:
    """The field numbers at the top of a serialised ``Event`` (-1 for what cannot be read)."""
    fields, at = set(), 0
    while at < len(event):
        key, at = _varint(event, at)
        number, kind = key >> 3, key & 7
        fields.add(number)
        if kind == 0:
            _, at = _varint(event, at)
        elif kind in (1, 5):
            at += 8 if kind == 1 else 4
        elif kind == 2:
            length, at = _varint(event, at)
            at += length
        else:
            return {-1}
    return fields


# An Event's wall_time (1), step (2), file_version (3), session_log (7) and source_metadata
# (10): what a writer puts in a file before anything is logged.
_HEADER_FIELDS = {1, 2, 3, 7, 10}


def remove_own_empty_events(log_dir: str) -> list[str]:
    """Remove the TensorBoard events files this process wrote in ``log_dir`` that hold nothing
    logged (a version, a session start: what a failed start leaves); return their paths."""
    removed = []
    for name in os.listdir(log_dir) if os.path.isdir(log_dir) else []:
        path = os.path.join(log_dir, name)
        if not name.startswith("events.out.tfevents.") or f".{os.getpid()}." not in name \
                or not os.path.isfile(path) or os.path.getsize(path) > _HEADER_BOUND:
            continue
        with open(path, "rb") as events:
            data = events.read()
        at, header_only = 0, True
        while at + 12 <= len(data) and header_only:
            (length,) = struct.unpack("<Q", data[at:at + 8])
            header_only = _event_fields(data[at + 12:at + 12 + length]) <= _HEADER_FIELDS
            at += 12 + length + 4
        if header_only:
            os.remove(path)
            removed.append(path)
    return removed


def newest_checkpoint(runs: str | os.PathLike[str], suffix: str,
                      folders: str = "version_*/checkpoints") -> Path | None:
    """The newest whole checkpoint in the ``folders`` (a glob; ``""``: ``runs`` itself) under
    ``runs``: never a hidden temp file (a write that did not finish), an empty file or a link;
    None when there is none. Newest is the latest written ``*<suffix>`` file, except that the
    whole ``last`` beside it wins unless it holds an older step (``saved_step``): a copy
    without its times (``cp -r``) leaves the write order to chance, while a kill during a
    ``last`` write leaves the older ``last`` beside the newer top-k file it followed."""
    found = []
    for path in Path(runs).glob(f"{folders}/*{suffix}" if folders else f"*{suffix}"):
        if path.name.startswith(".") or path.is_symlink() or not path.is_file():
            continue
        stat = path.stat()
        if stat.st_size:
            found.append((stat.st_mtime_ns, path.name.startswith("last"), path))
    if not found:
        return None
    newest = max(found)[2]
    lasts = [entry for entry in found if entry[1] and entry[2].parent == newest.parent]
    if newest.name.startswith("last") or not lasts:
        return newest
    last = max(lasts)[2]
    steps = saved_step(last), saved_step(newest)
    return last if None not in steps and steps[0] >= steps[1] else newest


# What ``saved_step`` reads at most: a checkpoint's header (safetensors) or pickled dictionary
# without its tensors (torch's zip); a larger one is not told apart.
_HEADER_BOUND = 16 << 20


_MEMO_OPS = {"MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"}
_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "INT", "LONG"}


def _pickled_step(data: bytes) -> int | None:
    """The int stored under the first ``"global_step"`` key of a pickle (a Lightning checkpoint's
    ``data.pkl``: its second top-level key), read from the opcodes by ``pickletools`` without
    unpickling anything, so nothing in it is built or run."""
    key_seen = False
    for opcode, argument, _position in pickletools.genops(data):
        if opcode.name in _MEMO_OPS:  # between a key and its value
            continue
        if key_seen:
            return argument if opcode.name in _INT_OPS and isinstance(argument, int) else None
        key_seen = argument == "global_step" and "UNICODE" in opcode.name
    return None


def saved_step(path: str | os.PathLike[str]) -> int | None:
    """The ``global_step`` a checkpoint of either side records (an MLX or torch ``.safetensors``
    header, a Lightning ``.ckpt``'s pickled dictionary), read without any framework and without
    its tensors; None when it cannot be told."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) == 8 and 0 < (size := struct.unpack("<Q", head)[0]) <= _HEADER_BOUND:
                meta = json.loads(f.read(size)).get("__metadata__") or {}
                step = json.loads(meta.get("cnn", "{}")).get("global_step")
            else:
                with zipfile.ZipFile(path) as archive:
                    (name,) = [i.filename for i in archive.infolist()
                               if i.filename.endswith("/data.pkl") and i.file_size <= _HEADER_BOUND]
                    step = _pickled_step(archive.read(name))
    except Exception:  # noqa: BLE001 - any file this cannot read is simply not told apart
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def relocated_state(state: dict, dirpath: str | None) -> dict:
    """A ``ModelCheckpoint``'s saved state (Lightning's keys: ``dirpath``, ``best_model_path``,
    ``last_model_path``, ``kth_best_model_path``, ``best_k_models``) resumed from ``dirpath``, a
    moved or copied run folder: when ``state["dirpath"]`` is another folder and the ``last`` it
    names is in ``dirpath`` under the same name, every path it names points into ``dirpath``, so
    the run goes on as it would have in place (``last`` rewritten, not a new ``last-v1`` beside a
    stale one; its best models kept). Any other state comes back unchanged, for Lightning's rule
    (a changed folder forgets all but the best path)."""
    old, last = state.get("dirpath"), state.get("last_model_path")
    if not (dirpath and old and last) or os.path.abspath(old) == os.path.abspath(dirpath):
        return state

    def moved(path):
        if path and os.path.dirname(os.path.abspath(path)) == os.path.abspath(old):
            return os.path.join(dirpath, os.path.basename(path))
        return path

    if not os.path.isfile(moved(last)):
        return state
    state = {**state, "dirpath": dirpath}
    for key in ("best_model_path", "last_model_path", "kth_best_model_path"):
        if key in state:
            state[key] = moved(state[key])
    if isinstance(state.get("best_k_models"), dict):
        state["best_k_models"] = {moved(path): score for path, score in state["best_k_models"].items()}
    return state


def renew_last(checkpoint, trainer) -> str | None:
    """``on_fit_start`` of both sides' ``ModelCheckpoint`` with ``save_last``: a fit resumed from
    a checkpoint in the callback's folder that holds a later step than the ``last`` beside it
    (a kill during the ``last`` write, after the epoch's top-k file: ``--ckpt_path last`` then
    takes the top-k file) makes ``last`` a copy of it first, whole or not at all, on rank zero.
    ``last`` is then the newest state however the run ends, with nothing left to train
    included. The renewed path, or None."""
    name = getattr(checkpoint, "CHECKPOINT_NAME_LAST", None)
    resumed, folder = trainer.ckpt_path, checkpoint.dirpath
    if (checkpoint.save_last is not True or not trainer.is_global_zero or not name or "{" in name
            or not resumed or not folder or not os.path.isfile(resumed)
            or os.path.dirname(os.path.abspath(resumed)) != os.path.abspath(folder)):
        return None
    last = os.path.join(folder, name + checkpoint.FILE_EXTENSION)
    if os.path.abspath(resumed) == os.path.abspath(last) or os.path.islink(last):
        return None
    if os.path.isfile(last) and os.path.getsize(last):
        steps = saved_step(last), saved_step(resumed)
        if None in steps or steps[0] >= steps[1]:
            return None
    with atomic_path(last) as temp:
        shutil.copyfile(resumed, temp)
    # the callback's own from now on: its next `last` replaces it, not a `last-v1` beside it
    checkpoint.last_model_path = last
    return last


def peer_lost(trainer, suffix: str, dead: int | None = None, how: str | None = None) -> PeerLostError:
    """The one-line error of a rank whose peer rank is gone: which one (``dead``, when known) and,
    in ``fit``, whether ``--ckpt_path last`` has a checkpoint of this run to resume from. Reads
    only files: no collective can run once a rank is gone."""
    folder = getattr(trainer.checkpoint_callback, "dirpath", None)
    if trainer.state.fn != "fit":
        hint = "run it again"
    elif folder and newest_checkpoint(Path(folder).parent.parent, suffix) is not None:
        hint = "resume with --ckpt_path last"
    else:
        hint = "no checkpoint was written for this run: start it again"
    return PeerLostError(trainer.global_rank, trainer.world_size, dead, how, hint)


def own_run(log_dir: str | None) -> list[str]:
    """Make ``log_dir`` this process's until it ends (or ``release_runs``): an exclusive
    ``flock`` on the directory. Raise ``ConfigError`` when another live process holds it, or when
    it cannot be written (before a logger's writer thread fails on it with a traceback). Then
    remove the temp files dead writers left in its ``checkpoints`` folder (none can be live now)
    and return their paths. ``None`` (a logger with no local folder, e.g. an MLflow server):
    nothing to own."""
    if log_dir is None:
        return []
    path = os.path.abspath(log_dir)
    if path in _OWNED:
        return []
    os.makedirs(path, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"{log_dir} is in use by another fit that is still running; wait for it "
                          "to end, or start a new run without --ckpt_path") from None
    if not os.access(path, os.W_OK):  # EROFS answers here for root too
        os.close(fd)
        raise ConfigError(f"run folder {log_dir} cannot be written (a read-only file system or folder): "
                          "copy the run somewhere writable and resume from there")
    _OWNED[path] = fd
    return remove_temp_files(os.path.join(path, "checkpoints"))


def release_runs() -> None:
    """Give up every run directory ``own_run`` took (a command that ends without its process)."""
    while _OWNED:
        os.close(_OWNED.popitem()[1])  # closing the last descriptor drops the flock


def nothing_trained_line(max_epochs, max_steps, limit_train_batches) -> str:
    """The one line for a ``fit`` that took no training step (its run folder is removed)."""
    reason = ("trainer.max_epochs is 0" if max_epochs == 0 else "trainer.max_steps is 0"
              if max_steps == 0 else "trainer.limit_train_batches is 0"
              if limit_train_batches == 0 else "there was no training batch")
    return (f"warning: fit trained nothing ({reason}): no checkpoint was written, no test was "
            "run and no run folder was kept")


def untested_line(monitor: str | None, last: str | None) -> str:
    """The one line for a ``fit`` that ends without its test, having no best checkpoint."""
    why = (f"no validation logged {monitor}" if monitor
           else "no ModelCheckpoint with a monitor")
    then = f"; test the last one with --ckpt_path {shlex.quote(last)}" if last else ""
    return f"warning: fit ends without its test: no best checkpoint was kept ({why}){then}"


def finish_fit(trainer, test: Callable[[str], object], untestable: str | None = None) -> bool:
    """What ends a ``fit`` on both sides (Lightning's ``Trainer`` or the MLX mirror's), unless a
    signal stopped it: ``test(best)`` of the best checkpoint, stopped at once by a signal
    (``cnn.interrupts.final_test_stops``); or, having none, one ``warning:`` line saying so
    (not for ``fast_dev_run``, which saves nothing by design); or, when no step was trained,
    the run folder removed and one ``warning:`` line. Without a ModelCheckpoint
    (``trainer.enable_checkpointing`` false) ``test(None)`` tests the weights as trained, after a
    ``note:`` line. ``untestable``: why there can be no test (a user's model without
    ``test_step``), said in one ``note:`` line instead. Whether the test ran."""
    if trainer.interrupted:
        return False
    if trainer.global_step == 0:  # on every rank alike
        discard_unstarted_run(trainer)
        if trainer.is_global_zero:
            print(nothing_trained_line(trainer.max_epochs, trainer.max_steps,
                                       trainer.limit_train_batches), file=sys.stderr)
        return False
    checkpoint = trainer.checkpoint_callback
    best = getattr(checkpoint, "best_model_path", "")
    if untestable:
        if trainer.is_global_zero and not trainer.fast_dev_run:
            kept = f"; its checkpoints are in {checkpoint.dirpath}" if best else ""
            print(f"note: fit ends without its test: {untestable}{kept}", file=sys.stderr)
        return False
    if best:
        with final_test_stops(best):
            test(best)
        return True
    if checkpoint is None and not trainer.fast_dev_run:  # trainer.enable_checkpointing false
        if trainer.is_global_zero:
            print("note: no checkpoint was kept (trainer.enable_checkpointing false): testing the "
                  "weights as trained", file=sys.stderr)
        with stop_on_signals("the test that ends fit", "training had finished; no checkpoint was "
                             "kept (trainer.enable_checkpointing false)"):
            test(None)
        return True
    if trainer.is_global_zero and not trainer.fast_dev_run:
        print(untested_line(getattr(checkpoint, "monitor", None),
                            getattr(checkpoint, "last_model_path", None)), file=sys.stderr)
    return False


def start_new_run_from(model, ckpt_path: str | None) -> None:
    """``fit`` of a model with ``init_from``: a new run (no ``--ckpt_path``) starts from that
    checkpoint's network weights (the model's ``start_from``, either side), printing its
    ``note:``; a resumed run takes every weight from the checkpoint it resumes."""
    path = getattr(model, "hparams", {}).get("init_from")
    if not path or ckpt_path:
        return
    note = model.start_from(path)
    if note:
        print(f"note: {note}", file=sys.stderr)


# The key under which both sides' checkpoints name the optimizer classes whose state they hold.
OPTIMIZERS_KEY = "optimizer_classes"


def optimizer_names(optimizers) -> list[str]:
    """What a checkpoint records under ``OPTIMIZERS_KEY``: each optimizer's class name."""
    return [type(optimizer).__name__ for optimizer in optimizers]


def check_same_optimizers(saved, optimizers, path) -> None:
    """``CheckpointError`` (one line) when a ``fit`` resumed from ``path`` built other
    ``optimizers`` than those whose state the checkpoint holds (``saved``, its
    ``OPTIMIZERS_KEY``; None in a checkpoint from before the key, which is not judged): their
    state cannot carry over (torch fails at the first step, MLX would drop it silently). Called
    once the optimizers exist and before the state is restored or a step is taken."""
    current = optimizer_names(optimizers)
    if saved is None or list(saved) == current:
        return
    raise CheckpointError(
        f"{path} holds the state of {', '.join(saved) or 'no optimizer'}, and this fit builds "
        f"{', '.join(current) or 'none'}: resume with the optimizer it was trained with, or start a new "
        f"run from its weights with --model.init_from {shlex.quote(str(path))}")
