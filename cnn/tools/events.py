"""Reading TensorBoard event files back: the log schema as written, for tests and ``plot``."""

from __future__ import annotations

import logging
import struct
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from cnn.bounded_yaml import load_yaml
from cnn.user_files import open_regular, read_regular_text


@dataclass(frozen=True)
class Scalar:
    step: int
    value: float
    wall_time: float


def read_scalars(run_dir: str | Path) -> dict[str, list[Scalar]]:
    """Every scalar series of one run directory (all its event files), ordered by step.

    The files are read as TensorBoard reads a run: in the order of their names, as one. A run
    that ``fit`` and then ``test`` wrote from two Trainer calls has two event files in one
    ``version_N``; a resumed one has its first run's files before its own, whose session start
    (``cnn.ckpt_path.mark_session_start``) hides the earlier files' points at or after its step.
    """
    with _whole_records(Path(run_dir)) as directory:
        accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0, "images": 0})
        tensorboard_log = logging.getLogger("tensorboard")
        level = tensorboard_log.level
        tensorboard_log.setLevel(logging.ERROR)  # a purge is what is asked for here, not news
        try:
            accumulator.Reload()
        finally:
            tensorboard_log.setLevel(level)
        return {tag: sorted((Scalar(e.step, e.value, e.wall_time) for e in accumulator.Scalars(tag)),
                            key=lambda s: (s.wall_time, s.step))
                for tag in accumulator.Tags()["scalars"]}


@contextmanager
def _whole_records(run_dir: Path) -> Iterator[Path]:
    """``run_dir``, or when one of its events files ends inside a record (``_loaded``), a copy of
    its events files cut to their whole records."""
    files = sorted(run_dir.glob("events.out.tfevents.*"))
    ends = [whole_records_end(path) for path in files]
    if all(end == path.stat().st_size for path, end in zip(files, ends)):
        yield run_dir
        return
    with tempfile.TemporaryDirectory() as scratch:
        for path, end in zip(files, ends):
            with open_regular(path) as source:
                (Path(scratch) / path.name).write_bytes(source.read(end))
        yield Path(scratch)


def read_settings(run_dir: str | Path) -> dict[str, bool | float | str]:
    """The run's settings as TensorBoard's HPARAMS tab shows them (``cnn.hparams``: framework
    included), else its ``hparams.yaml`` (a run from before that was written); ``{}`` if neither."""
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*.hparams")):  # cnn.hparams's own files
        accumulator = _loaded(path, size_guidance={"tensors": 0})
        content = accumulator.PluginTagToContent(hparams_metadata.PLUGIN_NAME).get(
            hparams_metadata.SESSION_START_INFO_TAG)
        if content is not None:
            start = hparams_metadata.parse_session_start_info_plugin_data(content)
            return {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items() if v.WhichOneof("kind")}
    hparams = Path(run_dir) / "hparams.yaml"
    if hparams.is_file():
        return dict(load_yaml(read_regular_text(hparams), f"{hparams}") or {})
    return {}


def run_dirs(root: str | Path) -> list[Path]:
    """The ``version_N`` directories holding event files under ``root``, sorted."""
    return sorted({p.parent for p in Path(root).rglob("events.out.tfevents.*")})


# An events file is a sequence of TFRecords: u64 length, u32 CRC of it, the bytes, u32 CRC.
_RECORD_HEADER, _RECORD_FOOTER = 12, 4


def _loaded(path: Path, size_guidance: dict) -> EventAccumulator:
    """TensorBoard's accumulator of the events file at ``path``, loaded from its whole records
    only: the reader allocates what a record's length field claims before it reads, so a file
    cut inside a record (or one whose length field claims terabytes) is read from a copy of the
    records before that point."""
    end = whole_records_end(path)
    if end == path.stat().st_size:
        accumulator = EventAccumulator(str(path), size_guidance=size_guidance)
        accumulator.Reload()
        return accumulator
    with tempfile.TemporaryDirectory() as scratch:
        whole = Path(scratch) / path.name
        with open_regular(path) as source:
            whole.write_bytes(source.read(end))
        accumulator = EventAccumulator(str(whole), size_guidance=size_guidance)
        accumulator.Reload()
        return accumulator


def whole_records_end(path: str | Path) -> int:
    """Where the last whole record of the events file at ``path`` ends, in bytes (its size when
    the file is whole); only the length fields are read."""
    size, end = Path(path).stat().st_size, 0
    with open_regular(path) as f:
        while end + _RECORD_HEADER <= size:
            f.seek(end)
            (length,) = struct.unpack("<Q", f.read(8))
            if end + _RECORD_HEADER + length + _RECORD_FOOTER > size:
                break
            end += _RECORD_HEADER + length + _RECORD_FOOTER
    return end


def truncated_files(dirs: Iterable[str | Path]) -> list[tuple[Path, int]]:
    """``(events file, bytes of whole records)`` for each events file under ``dirs`` that ends
    inside a record: the reader stops there without a word, so the caller says it."""
    found = []
    for run_dir in dirs:
        for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
            end = whole_records_end(path)
            if end != path.stat().st_size:
                found.append((path, end))
    return found
