"""Mirror of torch.utils.tensorboard.writer: ``SummaryWriter``, what Lightning's ``TensorBoardLogger.experiment`` is.

Written with tensorboard's own ``EventFileWriter`` and summary protos (no torch): scalars, histograms, images and
text stored as torch's writer stores them, so TensorBoard shows them alike. Arrays may be ``mx.array``, numpy or
anything ``np.asarray`` takes.
"""

from __future__ import annotations

import struct
import time
import zlib
from typing import Any, Mapping, Optional

import numpy as np


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
    """torch's ``SummaryWriter`` on tensorboard's ``EventFileWriter``: one event file in ``log_dir``."""

    def __init__(self, log_dir: str, **kwargs: Any) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.log_dir = log_dir
        self.file_writer = EventFileWriter(log_dir, **kwargs)

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
