"""A run's settings in TensorBoard's HPARAMS tab, written the same way by both frameworks.

After ``fit`` and its test, each side's CLI hands the run's TensorBoard folder, the
hyper-parameters its loggers got (the model's and the data's) and its framework to
:func:`write_hparams`. It writes one event file (``*.hparams``) with the hparams plugin's
experiment (every setting, ``framework`` among them, and the metrics ``HPARAMS_METRICS``) and the
run's session start and end. The plugin reads the metric values from the scalars the run logged
under those names (the last value of each), so the tab compares runs of both frameworks, their
settings and results side by side. Framework-free: tensorboard's protos only, imported when a
file is written (a command that writes none, ``fit --help``, does not load tensorboard).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Mapping

from cnn import schema

if TYPE_CHECKING:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import plugin_data_pb2

HPARAMS_METRICS = (schema.VAL_ACC, schema.TEST_ACC, schema.TEST_LOSS)
FRAMEWORK_KEY = "framework"


def session_values(hparams: Mapping[str, Any], framework: str) -> dict[str, bool | float | str]:
    """The values the plugin can hold (a bool, a number or a string; a list or ``None`` as its
    text), nested mappings flattened as ``outer/inner``, plus ``framework``; keys starting with
    ``_`` (Lightning's own bookkeeping) are left out."""
    out: dict[str, bool | float | str] = {}
    for key, value in hparams.items():
        if str(key).startswith("_"):
            continue
        if isinstance(value, Mapping):
            out.update({f"{key}/{k}": v for k, v in session_values(value, framework).items() if k != FRAMEWORK_KEY})
        elif isinstance(value, (bool, int, float, str)):
            out[str(key)] = value
        else:
            out[str(key)] = str(value)
    out[FRAMEWORK_KEY] = framework
    return out


def _data_type(value: bool | float | str) -> int:
    from tensorboard.plugins.hparams import api_pb2

    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    return api_pb2.DATA_TYPE_FLOAT64 if isinstance(value, (int, float)) else api_pb2.DATA_TYPE_STRING


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data),
                                        tensor=metadata.NULL_TENSOR)])


def hparams_summaries(values: Mapping[str, bool | float | str], start_time: float, end_time: float
                      ) -> list[Summary]:
    """The experiment, session start and session end summaries of one run with ``values``."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    experiment = api_pb2.Experiment(
        time_created_secs=start_time,
        hparam_infos=[api_pb2.HParamInfo(name=k, type=_data_type(v)) for k, v in sorted(values.items())],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in HPARAMS_METRICS])
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=start_time)
    for key, value in values.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = value
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=end_time)
    return [_summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
            _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
            _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))]


def write_hparams(log_dir: str, hparams: Mapping[str, Any], framework: str, start_time: float) -> None:
    """Write the run's settings (``hparams`` and ``framework``) for the HPARAMS tab into
    ``log_dir`` (a TensorBoard run folder), as one event file of its own; ``start_time``: when
    the run started (seconds since the epoch)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    os.makedirs(log_dir, exist_ok=True)
    writer = EventFileWriter(log_dir, filename_suffix=".hparams")
    try:
        now = time.time()
        for summary in hparams_summaries(session_values(hparams, framework), start_time, now):
            writer.add_event(Event(wall_time=now, step=0, summary=summary))
    finally:
        writer.close()


def record_hparams(trainer: Any, tensorboard_class: type, framework: str, start_time: float) -> None:
    """:func:`write_hparams` into the folder of each of ``trainer``'s loggers that is a
    ``tensorboard_class`` (the side's TensorBoard logger), on rank zero, with what Lightning logs
    as hyper-parameters: the datamodule's initial hparams updated by the module's."""
    if not trainer.is_global_zero:
        return
    params = dict(getattr(trainer.datamodule, "hparams_initial", None) or {})
    params.update(trainer.lightning_module.hparams_initial)
    for logger in trainer.loggers:
        if isinstance(logger, tensorboard_class):
            write_hparams(logger.log_dir, params, framework, start_time)
