"""Mirror of lightning.pytorch.loggers.csv_logs: ``CSVLogger``, the files Lightning's writes.

``<save_dir>/<name>/version_N/metrics.csv``: one row per ``log_metrics`` call, a ``step`` column and
one column per metric name ever logged, sorted by name, empty where a row has no value (a new
name rewrites the file under the wider header); ``hparams.yaml`` beside it, rewritten on every
``log_hyperparams``. Rows are buffered and written on ``save()`` (which the trainer calls after
every write, as Lightning does) and every ``flush_logs_every_n_steps`` steps.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from argparse import Namespace
from typing import Any, Mapping, Optional, Union

from cnn.mx.lightning.core.saving import yaml_safe
from cnn.mx.lightning.loggers.logger import VersionedLogger

import yaml

from cnn.atomic import write_text


class ExperimentWriter:
    """Lightning's ``ExperimentWriter``: buffers metric rows, writes ``metrics.csv`` and ``hparams.yaml``.

    A directory that already holds a ``metrics.csv`` loses it (with a warning), as in Lightning:
    an explicit ``version`` starts that version's metrics afresh.
    """

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.metrics: list[dict[str, Any]] = []
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        if os.path.isdir(log_dir) and os.listdir(log_dir):
            warnings.warn(f"Experiment logs directory {log_dir} exists and is not empty. Previous log files in "
                          "this directory will be deleted when the new ones are saved!", stacklevel=2)
            if os.path.isfile(self.metrics_file_path):
                os.remove(self.metrics_file_path)
        os.makedirs(log_dir, exist_ok=True)

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        row = {k: v.item() if hasattr(v, "item") else v for k, v in metrics.items()}  # ints stay ints
        row["step"] = len(self.metrics) if step is None else int(step)
        self.metrics.append(row)

    def log_hparams(self, params: Mapping[str, Any]) -> None:
        self.hparams.update(params)
        write_text(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE),
                          yaml.safe_dump(yaml_safe(self.hparams)))

    def save(self) -> None:
        if not self.metrics:
            return
        new_keys = set().union(*self.metrics) - set(self.metrics_keys)
        self.metrics_keys = sorted([*self.metrics_keys, *new_keys])
        exists = os.path.isfile(self.metrics_file_path)
        if exists and not new_keys:  # appending keeps a save cheap on long runs
            with open(self.metrics_file_path, "a", newline="", encoding="utf-8") as file:
                csv.DictWriter(file, fieldnames=self.metrics_keys).writerows(self.metrics)
        else:  # a first or a wider header: the whole file again, atomically
            rows = []
            if exists:
                with open(self.metrics_file_path, newline="", encoding="utf-8") as file:
                    rows = list(csv.DictReader(file))
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows + self.metrics)
            write_text(self.metrics_file_path, text.getvalue())
        self.metrics = []


class CSVLogger(VersionedLogger):
    """Lightning's ``CSVLogger`` for the MLX trainer (same arguments, directories and files).

    Args:
        save_dir: root directory.
        name: experiment name; ``""``/``None`` puts versions directly under ``save_dir``.
        version: int -> ``version_<int>``; str -> used verbatim; ``None`` -> the next free ``version_N``.
        prefix: prepended to every metric name as ``<prefix>-<name>``.
        flush_logs_every_n_steps: write buffered rows every this many steps (and on ``save``/``finalize``).

    Contract: ``log_metrics`` buffers one row; ``save`` writes the buffered rows; ``log_hyperparams``
    writes ``hparams.yaml``; ``finalize`` saves. Images are not logged (a CSV has no place for them).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(self, save_dir: Union[str, os.PathLike], name: Optional[str] = "lightning_logs",
                 version: Optional[Union[int, str]] = None, prefix: str = "",
                 flush_logs_every_n_steps: int = 100) -> None:
        super().__init__(save_dir, name, version)
        self._prefix = prefix
        self._flush_logs_every_n_steps = flush_logs_every_n_steps
        self._experiment: Optional[ExperimentWriter] = None

    @property
    def experiment(self) -> ExperimentWriter:
        """The writer, created (with the run directory) on first use, like Lightning's."""
        if self._experiment is None:
            self._experiment = ExperimentWriter(self.log_dir)
        return self._experiment

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        if self._prefix:
            metrics = {f"{self._prefix}{self.LOGGER_JOIN_CHAR}{k}": v for k, v in metrics.items()}
        if step is None:
            step = len(self.experiment.metrics)
        self.experiment.log_metrics(metrics, step)
        if (step + 1) % self._flush_logs_every_n_steps == 0:
            self.save()

    def log_hyperparams(self, params: Union[Mapping[str, Any], Namespace, None] = None) -> None:
        params = vars(params) if isinstance(params, Namespace) else dict(params or {})
        self.experiment.log_hparams(params)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """No-op, as Lightning's CSVLogger."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """No-op hook kept for Lightning API parity."""

    def save(self) -> None:
        self.experiment.save()

    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self.save()
