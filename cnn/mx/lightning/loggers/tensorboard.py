"""Mirror of lightning.pytorch.loggers.tensorboard: ``TensorBoardLogger``, file-compatible with Lightning's.

Its ``experiment`` is a :class:`~cnn.mx.lightning.loggers.summary_writer.SummaryWriter` (torch's, on tensorboard's
own ``EventFileWriter`` and summary protos, no torch), scalars stored exactly as torch's ``add_scalar`` does
(``Summary.Value(tag, simple_value)``). Like Lightning's, it imports tensorboard only when it writes: a command that
logs nothing (``fit --help``) does not load it.
"""

from __future__ import annotations

import os
from argparse import Namespace
from typing import Any, Mapping, Optional, Union

from cnn.mx.lightning.core.saving import yaml_safe
from cnn.mx.lightning.loggers.logger import VersionedLogger
from cnn.mx.lightning.loggers.summary_writer import SummaryWriter, hparams_summaries
from cnn.mx.lightning.loggers.utilities import convert_params, flatten_dict

import numpy as np
import yaml

from cnn.atomic import write_text


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

    Contract: ``log_metrics`` writes one scalar event per key at ``step``; ``log_hyperparams`` accumulates params which
    ``save()`` writes once to ``<log_dir>/hparams.yaml``; ``finalize(status)`` flushes and closes the event file.
    """

    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, save_dir: Union[str, os.PathLike], name: Optional[str] = "lightning_logs",
                 version: Optional[Union[int, str]] = None, default_hp_metric: bool = True, prefix: str = "",
                 sub_dir: Optional[Union[str, os.PathLike]] = None, log_graph: bool = False) -> None:
        super().__init__(save_dir, name, version, sub_dir)
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
            self._writer = SummaryWriter(self.log_dir)
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
