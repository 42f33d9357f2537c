"""Mirror of lightning.pytorch.loggers.tensorboard: ``TensorBoardLogger``, file-compatible with Lightning's.

Its ``experiment`` is a :class:`SummaryWriter`: torch's ``torch.utils.tensorboard.SummaryWriter`` on tensorboard's
own ``EventFileWriter`` and summary protos (no torch), scalars, histograms, images and text stored as torch's writer
stores them (a scalar: ``Summary.Value(tag, simple_value)``). Arrays may be ``mx.array``, numpy or anything
``np.asarray`` takes. Like Lightning's, it imports tensorboard only when it writes: a command that
logs nothing (``fit --help``) does not load it.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from argparse import Namespace
from typing import Any, Mapping, Optional, Union

from cnn.mx.lightning.core.saving import yaml_safe
from cnn.mx.lightning.loggers.logger import VersionedLogger
from cnn.mx.lightning.loggers.utilities import convert_params, flatten_dict

import numpy as np
import yaml

from cnn.atomic import write_text


def png(image: np.ndarray) -> bytes:
    """Minimal PNG encoder for uint8 HWC images (1, 3 or 4 channels); avoids a Pillow dependency."""
    h, w, c = image.shape
    color_type = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def to_hwc(image: Any, dataformats: str) -> np.ndarray:
    """``image`` as uint8 ``H x W x C`` (torch's ``convert_to_HWC`` and scaling: floats are in [0, 1])."""
    img = np.asarray(image)
    dataformats = dataformats.upper()
    if len(dataformats) != img.ndim:
        raise ValueError(f"`dataformats` {dataformats!r} does not match the image's {img.ndim} dimensions")
    if dataformats == "HW":
        img, dataformats = img[:, :, None], "HWC"
    img = np.transpose(img, [dataformats.index(c) for c in "HWC"])
    if img.dtype != np.uint8:
        img = (img.astype(np.float32) * 255.0).clip(0, 255).astype(np.uint8)
    return img


def histogram_proto(values: Any, bins: Any) -> Any:
    """torch's ``make_histogram``: the counts of ``values`` in ``bins`` (``"tensorflow"``: numpy's ``"auto"``)."""
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("The input has no element.")
    counts, limits = np.histogram(values, bins="auto" if bins == "tensorflow" else bins)
    return HistogramProto(min=float(values.min()), max=float(values.max()), num=int(values.size),
                          sum=float(values.sum()), sum_squares=float((values ** 2).sum()),
                          bucket_limit=[float(x) for x in limits[1:]], bucket=[float(x) for x in counts])


def hparams_summaries(params: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[Any]:
    """torch's ``hparams``: the experiment, session start and session end summaries of ``params`` (numbers, bools,
    strings; anything else as its text) with ``metrics`` named."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo()
    for key, value in params.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = str(value)
    experiment = api_pb2.Experiment(hparam_infos=[api_pb2.HParamInfo(name=k) for k in params],
                                    metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k))
                                                  for k in metrics])
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)

    def summary(tag: str, data: Any) -> Summary:
        return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data),
                                            tensor=metadata.NULL_TENSOR)])

    return [summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
            summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
            summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))]


class SummaryWriter:
    """torch's ``SummaryWriter`` on tensorboard's ``EventFileWriter``: one event file in ``log_dir``.

    ``purge_step``, as torch's: the file begins with a restart mark (``SessionLog.START``) at that
    step, after which TensorBoard shows none of the events at or after it from the run's earlier
    files (a run resumed from a checkpoint older than its last logged step)."""

    def __init__(self, log_dir: str, purge_step: Optional[int] = None, max_queue: int = 10,
                 flush_secs: int = 120, filename_suffix: str = "") -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.log_dir = log_dir
        self.file_writer = EventFileWriter(log_dir, max_queue_size=max_queue, flush_secs=flush_secs,
                                           filename_suffix=filename_suffix)
        if purge_step is not None:
            self.add_event(Event(session_log=SessionLog(status=SessionLog.START)), purge_step)

    def get_logdir(self) -> str:
        return self.log_dir

    def _get_file_writer(self) -> Any:
        return self

    def add_event(self, event: Any, step: Optional[int] = None, walltime: Optional[float] = None) -> None:
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self.file_writer.add_event(event)

    def add_summary(self, summary: Any, global_step: Optional[int] = None, walltime: Optional[float] = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self.add_event(Event(summary=summary), global_step, walltime)

    def _add_value(self, value: Any, global_step: Optional[int], walltime: Optional[float]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.add_summary(Summary(value=[value]), global_step, walltime)

    def add_scalar(self, tag: str, scalar_value: Any, global_step: Optional[int] = None,
                   walltime: Optional[float] = None, **kwargs: Any) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        value = scalar_value.item() if hasattr(scalar_value, "item") else scalar_value
        self._add_value(Summary.Value(tag=tag, simple_value=float(value)), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: Mapping[str, Any], global_step: Optional[int] = None,
                    walltime: Optional[float] = None) -> None:
        """One scalar ``main_tag/key`` a key (torch writes each into a run folder of its own)."""
        for key, value in tag_scalar_dict.items():
            self.add_scalar(f"{main_tag}/{key}", value, global_step, walltime)

    def add_histogram(self, tag: str, values: Any, global_step: Optional[int] = None, bins: Any = "tensorflow",
                      walltime: Optional[float] = None, max_bins: Any = None) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._add_value(Summary.Value(tag=tag, histo=histogram_proto(values, bins)), global_step, walltime)

    def add_image(self, tag: str, img_tensor: Any, global_step: Optional[int] = None, walltime: Optional[float] = None,
                  dataformats: str = "CHW") -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        img = to_hwc(img_tensor, dataformats)
        h, w, c = img.shape
        image = Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=png(img))
        self._add_value(Summary.Value(tag=tag, image=image), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step: Optional[int] = None,
                 walltime: Optional[float] = None) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf_8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        self._add_value(Summary.Value(tag=tag + "/text_summary", metadata=metadata, tensor=tensor), global_step,
                        walltime)

    def add_hparams(self, hparam_dict: Mapping[str, Any], metric_dict: Mapping[str, Any],
                    global_step: Optional[int] = None) -> None:
        """The hparams plugin's summaries of ``hparam_dict``, and each metric as a scalar."""
        for summary in hparams_summaries(hparam_dict, metric_dict):
            self.add_summary(summary, global_step)
        for key, value in metric_dict.items():
            self.add_scalar(key, value, global_step)

    def flush(self) -> None:
        self.file_writer.flush()

    def close(self) -> None:
        self.file_writer.close()


class TensorBoardLogger(VersionedLogger):
    """Lightning-compatible TensorBoard logger (``save_dir/name/version_N[/sub_dir]``).

    Args:
        save_dir: root directory (Lightning's ``save_dir``).
        name: experiment name; ``""``/``None`` puts versions directly under ``save_dir``.
        version: int -> ``version_<int>``; str -> used verbatim; ``None`` -> next free ``version_N`` (max + 1),
            decided lazily on first access like Lightning, but claimed with ``os.mkdir`` (``cnn.runs``).
        default_hp_metric: True (Lightning's default): ``log_hyperparams`` without metrics writes ``hp_metric=-1``
            and the hparams plugin's summaries; the project's CLI sets it False so the event files carry only real
            metrics.
        prefix: prepended to every metric name as ``<prefix>-<name>`` (Lightning's ``LOGGER_JOIN_CHAR``).
        sub_dir: optional extra directory below the version directory.
        log_graph: accepted for Lightning parity; MLX graphs are not logged.
        **kwargs: :class:`SummaryWriter`'s own (``purge_step``, ``max_queue``, ``flush_secs``,
            ``filename_suffix``), as Lightning passes its to torch's.

    Contract: ``log_metrics`` writes one scalar event per key at ``step``; ``log_hyperparams`` accumulates params which
    ``save()`` writes once to ``<log_dir>/hparams.yaml``; ``finalize(status)`` flushes and closes the event file.
    """

    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, save_dir: Union[str, os.PathLike], name: Optional[str] = "lightning_logs",
                 version: Optional[Union[int, str]] = None, default_hp_metric: bool = True, prefix: str = "",
                 sub_dir: Optional[Union[str, os.PathLike]] = None, log_graph: bool = False, **kwargs: Any) -> None:
        super().__init__(save_dir, name, version, sub_dir)
        self._kwargs = kwargs
        self._default_hp_metric = default_hp_metric
        self._prefix = prefix
        self._writer: Optional[SummaryWriter] = None
        self.hparams: dict[str, Any] = {}

    @property
    def experiment(self) -> SummaryWriter:
        """torch's ``SummaryWriter`` (``add_scalar``, ``add_histogram``, ``add_image``, ``add_text``...), created
        with its directory on first use, as Lightning's."""
        if self._writer is None:
            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = SummaryWriter(self.log_dir, **self._kwargs)
            # torch's writer marks its first file only; one made again after finalize (a test
            # after fit) is the same run's next file
            self._kwargs.pop("purge_step", None)
        return self._writer

    # -- logging --------------------------------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        """Write each ``name -> number`` (python/numpy/mx scalar) as a scalar summary at ``step``; a dict value as one
        scalar ``name/key`` a key."""
        for k, v in metrics.items():
            k = f"{self._prefix}-{k}" if self._prefix else k
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(v, Mapping):  # Lightning's add_scalars: one tag per sub-key
                self.experiment.add_scalars(k, v, step)
                continue
            try:
                self.experiment.add_scalar(k, float(v), step)
            except (TypeError, ValueError) as ex:
                raise ValueError(f"you tried to log {v!r} for {k!r}, which is not a scalar") from ex

    def log_hyperparams(self, params: Union[Mapping[str, Any], Namespace], metrics: Optional[Any] = None,
                        step: Optional[int] = None) -> None:
        """Lightning's: record hyper-parameters for ``hparams.yaml``; with ``metrics`` (``{"hp_metric": -1}`` when
        none is given and ``default_hp_metric``; a number is ``hp_metric``) also log them and the hparams plugin's
        summaries of the flattened params."""
        params = convert_params(params)
        self.hparams.update(params)
        if metrics is None:
            if self._default_hp_metric:
                metrics = {"hp_metric": -1}
        elif not isinstance(metrics, dict):
            metrics = {"hp_metric": metrics}
        if metrics:
            self.log_metrics(metrics, step)
            for summary in hparams_summaries(flatten_dict(params), metrics):
                self.experiment.add_summary(summary, step)

    def log_image(self, tag: str, image: Any, step: Optional[int] = None) -> None:
        """Log a uint8 ``H x W x C`` (or ``H x W``) image, e.g. a rendered confusion matrix."""
        img = np.asarray(image)
        if img.dtype != np.uint8:
            raise ValueError(f"log_image expects uint8 HWC data, got dtype {img.dtype}")
        self.experiment.add_image(tag, img, step, dataformats="HWC" if img.ndim == 3 else "HW")

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
