"""Mirror of lightning.pytorch.loggers.tensorboard: ``TensorBoardLogger``, file-compatible with Lightning's.

It writes with tensorboard's own ``EventFileWriter`` and summary protos (no torch), scalars stored exactly as
``torch.utils.tensorboard.SummaryWriter.add_scalar`` does (``Summary.Value(tag, simple_value)``). Like Lightning's, it
imports tensorboard only when it writes: a command that logs nothing (``fit --help``) does not load it.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from argparse import Namespace
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from cnn.mx.lightning.core.saving import yaml_safe
from cnn.mx.lightning.loggers.logger import VersionedLogger

import numpy as np
import yaml

from cnn.atomic import write_text

if TYPE_CHECKING:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter


def _png(image: np.ndarray) -> bytes:
    """Minimal PNG encoder for uint8 HWC images (1, 3 or 4 channels); avoids a Pillow dependency."""
    h, w, c = image.shape
    color_type = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class TensorBoardLogger(VersionedLogger):
    """Lightning-compatible TensorBoard logger (``save_dir/name/version_N[/sub_dir]``).

    Args:
        save_dir: root directory (Lightning's ``save_dir``).
        name: experiment name; ``""``/``None`` puts versions directly under ``save_dir``.
        version: int -> ``version_<int>``; str -> used verbatim; ``None`` -> next free ``version_N`` (max + 1),
            decided lazily on first access like Lightning, but claimed with ``os.mkdir`` (``cnn.runs``).
        default_hp_metric: if True, ``log_hyperparams`` writes ``hp_metric=-1`` like Lightning; the project keeps it
            False so the event files carry only real metrics.
        prefix: prepended to every metric name as ``<prefix>-<name>`` (Lightning's ``LOGGER_JOIN_CHAR``).
        sub_dir: optional extra directory below the version directory.
        log_graph: accepted for Lightning parity; MLX graphs are not logged.

    Contract: ``log_metrics`` writes one scalar event per key at ``step``; ``log_hyperparams`` accumulates params which
    ``save()`` writes once to ``<log_dir>/hparams.yaml``; ``finalize(status)`` flushes and closes the event file.
    """

    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, save_dir: Union[str, os.PathLike], name: Optional[str] = "lightning_logs",
                 version: Optional[Union[int, str]] = None, default_hp_metric: bool = False, prefix: str = "",
                 sub_dir: Optional[Union[str, os.PathLike]] = None, log_graph: bool = False) -> None:
        super().__init__(save_dir, name, version, sub_dir)
        self._default_hp_metric = default_hp_metric
        self._prefix = prefix
        self._writer: Optional[EventFileWriter] = None
        self.hparams: dict[str, Any] = {}

    @property
    def experiment(self) -> EventFileWriter:
        """The underlying event writer, created (with its directory) on first use like Lightning's SummaryWriter."""
        if self._writer is None:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = EventFileWriter(self.log_dir)
        return self._writer

    # -- logging --------------------------------------------------------------------------------------------
    def _add(self, value: Summary.Value, step: Optional[int]) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        event = Event(wall_time=time.time(), summary=Summary(value=[value]))
        if step is not None:
            event.step = int(step)
        self.experiment.add_event(event)

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        """Write each ``name -> number`` (python/numpy/mx scalar) as a scalar summary at ``step``."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        for k, v in metrics.items():
            k = f"{self._prefix}-{k}" if self._prefix else k
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(v, Mapping):  # Lightning's add_scalars: one tag per sub-key
                for sk, sv in v.items():
                    self._add(Summary.Value(tag=f"{k}/{sk}", simple_value=float(sv)), step)
                continue
            try:
                self._add(Summary.Value(tag=k, simple_value=float(v)), step)
            except (TypeError, ValueError) as ex:
                raise ValueError(f"you tried to log {v!r} for {k!r}, which is not a scalar") from ex

    def log_hyperparams(self, params: Union[Mapping[str, Any], Namespace], metrics: Optional[Mapping] = None,
                        step: Optional[int] = None) -> None:
        """Record hyper-parameters for ``hparams.yaml`` (and ``hp_metric`` only if ``default_hp_metric``)."""
        if isinstance(params, Namespace):
            params = vars(params)
        self.hparams.update(dict(params))
        if metrics is None and self._default_hp_metric:
            metrics = {"hp_metric": -1}
        if metrics:
            self.log_metrics(metrics, step)

    def log_image(self, tag: str, image: Any, step: Optional[int] = None) -> None:
        """Log a uint8 ``H x W x C`` (or ``H x W``) image, e.g. a rendered confusion matrix."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        img = np.asarray(image)
        if img.ndim == 2:
            img = img[:, :, None]
        if img.dtype != np.uint8:
            raise ValueError(f"log_image expects uint8 HWC data, got dtype {img.dtype}")
        h, w, c = img.shape
        summary_image = Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=_png(img))
        self._add(Summary.Value(tag=tag, image=summary_image), step)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """No-op (Lightning logs a torch graph here)."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """No-op hook kept for Lightning API parity."""

    def save(self) -> None:
        """Flush events and write ``hparams.yaml`` once (when the log directory exists), like Lightning."""
        if self._writer is not None:
            self._writer.flush()
        hparams_file = os.path.join(self.log_dir, self.NAME_HPARAMS_FILE)
        if os.path.isdir(self.log_dir) and not os.path.isfile(hparams_file):
            write_text(hparams_file, yaml.safe_dump(yaml_safe(self.hparams)))  # whole or not at all

    def finalize(self, status: str) -> None:
        """Flush and close the event file; on ``"success"`` also ``save()`` (Lightning behaviour)."""
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        if status == "success":
            self.save()
