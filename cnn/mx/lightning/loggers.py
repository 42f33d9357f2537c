"""Logging for the MLX trainer: the TensorBoard logger and Lightning's ``self.log`` semantics.

* :class:`TensorBoardLogger` is file-compatible with ``lightning.pytorch.loggers.TensorBoardLogger``: it writes with
  tensorboard's own ``EventFileWriter`` and summary protos (no torch), scalars stored exactly as
  ``torch.utils.tensorboard.SummaryWriter.add_scalar`` does (``Summary.Value(tag, simple_value)``).
* :class:`ResultCollection` replicates ``lightning.pytorch.trainer.connectors.logger_connector.result``: defaults for
  ``on_step``/``on_epoch`` depend on the hook that logs, ``on_step and on_epoch`` fork the name into
  ``<name>_step``/``<name>_epoch``, epoch values are the ``batch_size``-weighted mean (or sum/min/max) of the step
  values, the batch size defaults to ``len`` of the first array in the batch.
* :class:`LoggerConnector` replicates ``_LoggerConnector``: which values reach the loggers, when, at which step.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from argparse import Namespace
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Union

import mlx.core as mx
import numpy as np
import yaml
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from cnn.atomic import write_text
from cnn.runs import claim_version


def _png(image: np.ndarray) -> bytes:
    """Minimal PNG encoder for uint8 HWC images (1, 3 or 4 channels); avoids a Pillow dependency."""
    h, w, c = image.shape
    color_type = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _yaml_safe(params: Mapping[str, Any]) -> dict[str, Any]:
    # Like Lightning's save_hparams_to_yaml: values yaml cannot dump are replaced by their type name.
    out = {}
    for k, v in params.items():
        try:
            yaml.safe_dump(v)
            out[k] = v
        except yaml.YAMLError:
            out[k] = type(v).__name__
    return out


class VersionedLogger:
    """Lightning's run directories: ``save_dir/name/version_N[/sub_dir]``, the next free ``N`` unless
    ``version`` is given (an int, or a string used verbatim), decided on first access. The base of
    every MLX logger, so they all place (and share, across ranks) a run directory alike."""

    def __init__(self, save_dir: Union[str, os.PathLike], name: Optional[str], version: Optional[Union[int, str]],
                 sub_dir: Optional[Union[str, os.PathLike]] = None) -> None:
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._sub_dir = None if sub_dir is None else os.fspath(sub_dir)

    @property
    def name(self) -> str:
        return self._name

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def root_dir(self) -> str:
        return os.path.join(self._save_dir, self._name)

    @property
    def version(self) -> Union[int, str]:
        if self._version is None:
            self._version = self._get_next_version()
        return self._version

    def share_version(self, version: Union[int, str]) -> None:
        """Write under ``version`` (rank zero's, on the other ranks) instead of claiming one."""
        self._version = version

    @property
    def sub_dir(self) -> Optional[str]:
        return self._sub_dir

    @property
    def log_dir(self) -> str:
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        log_dir = os.path.join(self.root_dir, version)
        if self._sub_dir:
            log_dir = os.path.join(log_dir, self._sub_dir)
        return os.path.expanduser(os.path.expandvars(log_dir))

    def _get_next_version(self) -> int:
        # os.mkdir claims the number: two runs started together never share a version_N.
        return claim_version(self.root_dir)


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
            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = EventFileWriter(self.log_dir)
        return self._writer

    # -- logging --------------------------------------------------------------------------------------------
    def _add(self, value: Summary.Value, step: Optional[int]) -> None:
        event = Event(wall_time=time.time(), summary=Summary(value=[value]))
        if step is not None:
            event.step = int(step)
        self.experiment.add_event(event)

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        """Write each ``name -> number`` (python/numpy/mx scalar) as a scalar summary at ``step``."""
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
            write_text(hparams_file, yaml.safe_dump(_yaml_safe(self.hparams)))  # whole or not at all

    def finalize(self, status: str) -> None:
        """Flush and close the event file; on ``"success"`` also ``save()`` (Lightning behaviour)."""
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        if status == "success":
            self.save()


# ------------------------------------------------------------------ self.log semantics (Lightning's result.py)
# Which hooks may log and their on_step/on_epoch defaults, from Lightning's _FxValidator.functions.
_STEP_HOOKS = ("training_step", "on_train_batch_start", "on_train_batch_end", "on_before_backward",
               "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")
_EVAL_BATCH_HOOKS = ("validation_step", "test_step", "on_validation_batch_start", "on_validation_batch_end",
                     "on_test_batch_start", "on_test_batch_end")
_EPOCH_HOOKS = ("on_train_start", "on_validation_start", "on_test_start", "on_train_epoch_start",
                "on_train_epoch_end", "on_validation_epoch_start", "on_validation_epoch_end", "on_test_epoch_start",
                "on_test_epoch_end")


def default_log_levels(fx: Optional[str], on_step: Optional[bool], on_epoch: Optional[bool]) -> tuple[bool, bool]:
    """Lightning's ``_FxValidator.check_logging_and_get_default_levels`` for the hooks this trainer runs."""
    if fx in _STEP_HOOKS:
        defaults, step_allowed = (True, False), True
    elif fx in _EVAL_BATCH_HOOKS:
        defaults, step_allowed = (False, True), True
    elif fx in _EPOCH_HOOKS:
        defaults, step_allowed = (False, True), False
    else:
        raise ValueError(f"You can't `self.log()` inside `{fx}`.")
    on_step = defaults[0] if on_step is None else on_step
    on_epoch = defaults[1] if on_epoch is None else on_epoch
    if on_step and not step_allowed:
        raise ValueError(f"You can't `self.log(on_step=True)` inside `{fx}`.")
    if not on_step and not on_epoch:
        raise ValueError("`self.log(on_step=False, on_epoch=False)` is not useful.")
    return on_step, on_epoch


def extract_batch_size(batch: Any) -> int:
    """Size of the first dimension of the first array found in ``batch`` (Lightning's ``extract_batch_size``)."""
    if hasattr(batch, "shape"):
        return int(batch.shape[0]) if len(batch.shape) else 1
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            try:
                return extract_batch_size(item)
            except ValueError:
                continue
    raise ValueError("could not determine the batch size; pass `self.log(..., batch_size=...)`")


@dataclass
class LogMeta:
    """How one logged name is aggregated and routed (Lightning's ``_Metadata``)."""

    fx: str
    name: str
    prog_bar: bool = False
    logger: bool = True
    on_step: bool = False
    on_epoch: bool = True
    reduce_fx: str = "mean"
    batch_size: Optional[int] = None

    def forked_name(self, on_step: bool) -> str:
        if self.on_step and self.on_epoch:
            return f"{self.name}_{'step' if on_step else 'epoch'}"
        return self.name


_INIT = {"max": float("-inf"), "min": float("inf")}


class _Metric:
    """Running aggregate of one key (Lightning's ``_ResultMetric`` with plain python floats)."""

    def __init__(self, meta: LogMeta) -> None:
        self.meta = meta
        self.reset()
        self.has_reset = False

    def reset(self) -> None:
        self.value = _INIT.get(self.meta.reduce_fx, 0.0)
        self.cumulated_batch_size = 0.0
        self.step_value: Optional[float] = None
        self.has_reset = True

    def update(self, value: float, batch_size: int) -> None:
        if self.meta.on_step:
            self.step_value = value
            if not self.meta.on_epoch:
                self.value = value
                return
        fx = self.meta.reduce_fx
        if fx == "mean":
            self.value += value * batch_size
            self.cumulated_batch_size += batch_size
        elif fx == "max":
            self.value = max(self.value, value)
        elif fx == "min":
            self.value = min(self.value, value)
        else:  # sum
            self.value += value

    def compute(self) -> float:
        if self.meta.reduce_fx == "mean":
            return self.value / self.cumulated_batch_size if self.cumulated_batch_size else float("nan")
        return self.value


class ResultCollection(dict):
    """``fx.name -> _Metric`` for one loop (train / validation / test), Lightning's ``_ResultCollection``."""

    def __init__(self, training: bool) -> None:
        super().__init__()
        self.training = training
        self.batch: Any = None
        self.batch_size: Optional[int] = None

    def log(self, meta: LogMeta, value: float) -> None:
        key = f"{meta.fx}.{meta.name}"
        if key not in self:
            self[key] = _Metric(meta)
        elif asdict(self[key].meta) | {"batch_size": None} != asdict(meta) | {"batch_size": None}:
            raise ValueError(f"You called `self.log({meta.name}, ...)` twice in `{meta.fx}` with different arguments.")
        batch_size = meta.batch_size
        if batch_size is None:
            batch_size = self.batch_size
        if batch_size is None:
            batch_size = 1
            if self.batch is not None and meta.on_epoch and meta.reduce_fx == "mean":
                batch_size = self.batch_size = extract_batch_size(self.batch)
        metric = self[key]
        metric.has_reset = False
        metric.update(float(value), batch_size)

    def metrics(self, on_step: bool) -> dict[str, dict[str, float]]:
        """The ``log`` / ``callback`` / ``pbar`` views of the current step (``on_step``) or epoch aggregate."""
        out: dict[str, dict[str, float]] = {"log": {}, "callback": {}, "pbar": {}}
        for metric in self.values():
            if metric.has_reset:
                continue
            meta = metric.meta
            if on_step and meta.on_step:
                value = metric.step_value
            elif not on_step and meta.on_epoch:
                value = metric.compute()
            else:
                value = None
            if value is None:
                continue
            forked = meta.forked_name(on_step)
            if meta.logger:
                out["log"][forked] = value
            if self.training or (meta.on_epoch and not on_step):
                out["callback"][meta.name] = value
                out["callback"][forked] = value
            if meta.prog_bar:
                out["pbar"][forked] = value
        return out

    def reset(self) -> None:
        for metric in self.values():
            metric.reset()

    def state_dict(self) -> dict[str, Any]:
        return {k: {"meta": asdict(m.meta), **{a: getattr(m, a) for a in
                                                ("value", "cumulated_batch_size", "step_value", "has_reset")}}
                for k, m in self.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.clear()
        for k, s in state.items():
            metric = _Metric(LogMeta(**s["meta"]))
            for a in ("value", "cumulated_batch_size", "step_value", "has_reset"):
                setattr(metric, a, s[a])
            self[k] = metric


def to_float(value: Any) -> float:
    """Python float of an mx/numpy scalar or number (for aggregation and loggers)."""
    if hasattr(value, "item"):
        return float(value.item())
    return float(np.asarray(value))


_CAPTURED_FX = ("training_step", "validation_step", "test_step")


class LoggerConnector:
    """Lightning's ``_LoggerConnector`` for the MLX trainer: routes ``self.log`` into the active loop's
    :class:`ResultCollection` and writes values to the loggers at Lightning's steps.

    Inside a (possibly compiled) ``*_step`` the values are *captured* instead (``capture`` dict of
    ``key -> (LogMeta, mx.array)``): the step function returns them as outputs and the trainer feeds the evaluated
    numbers back with :meth:`feed`, which is what makes ``self.log`` work under ``mx.compile``.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.results = {k: ResultCollection(k == "train") for k in ("train", "validate", "test")}
        self.active: Optional[str] = None  # key of the collection self.log writes to
        self.in_step = False  # between batch start and epoch end: views show step values
        self.capture: Optional[dict[str, tuple[LogMeta, Any]]] = None
        self.logged: dict[str, float] = {}
        self.callback: dict[str, float] = {}
        self.pbar: dict[str, float] = {}

    def log(self, meta: LogMeta, value: Any) -> None:
        if self.capture is not None and meta.fx in _CAPTURED_FX:
            self.capture[f"{meta.fx}.{meta.name}"] = (meta, value if isinstance(value, mx.array) else mx.array(value))
            return
        if self.active is None:
            raise RuntimeError(f"self.log({meta.name!r}) called outside of a training/evaluation loop")
        self.results[self.active].log(meta, to_float(value))

    def feed(self, logs: Mapping[str, Any], metas: Mapping[str, LogMeta]) -> None:
        """Add the evaluated values a step returned (``key -> scalar``) to the active collection."""
        for key, value in logs.items():
            self.results[self.active].log(metas[key], to_float(value))

    def reset_metrics(self) -> None:
        self.logged, self.callback, self.pbar = {}, {}, {}

    def update_views(self, metrics: dict[str, dict[str, float]]) -> None:
        self.pbar.update(metrics["pbar"])
        self.callback.update(metrics["callback"])
        self.logged.update(metrics["log"])

    def view(self, kind: str) -> dict[str, float]:
        """``trainer.callback_metrics`` & co: the stored view merged with the active loop's current values."""
        base = {"log": self.logged, "callback": self.callback, "pbar": self.pbar}[kind]
        if self.active is not None:
            base.update(self.results[self.active].metrics(self.in_step)[kind])
        return base

    def should_update_logs(self) -> bool:
        """Lightning's rule: ``(_batches_that_stepped + 1) % log_every_n_steps == 0`` in fit (or ``should_stop``)."""
        t = self.trainer
        if t.log_every_n_steps == 0:
            return False
        step = t.fit_progress.batches_that_stepped + 1 if t.state.fn == "fit" and t.training else t._eval_batches_ready
        return step % t.log_every_n_steps == 0 or t.should_stop

    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        """Write ``metrics``; without ``step``: at ``_batches_that_stepped`` with ``epoch`` added (Lightning)."""
        t = self.trainer
        if not t.loggers or not metrics:
            return
        self.logged.update(metrics)
        scalars = dict(metrics)
        if step is None:
            step_metric = scalars.pop("step", None)
            if step_metric is not None:
                step = int(step_metric)
            else:
                scalars.setdefault("epoch", t.current_epoch)
                step = t.fit_progress.batches_that_stepped
        for logger in t.loggers:
            logger.log_metrics(scalars, step=step)
            logger.save()

    def log_hyperparams(self) -> None:
        """Lightning's ``_log_hyperparams``: module (+ datamodule) ``hparams_initial`` -> loggers, then ``save()``."""
        model, dm = self.trainer.lightning_module, self.trainer.datamodule
        params: dict[str, Any] = {}
        if getattr(dm, "hparams_initial", None):
            params.update(dm.hparams_initial)
        if model._log_hyperparams:
            params.update(model.hparams_initial)
        for logger in self.trainer.loggers:
            if params:
                logger.log_hyperparams(params)
            logger.save()


def print_results(metrics: Mapping[str, float], stage: str) -> None:
    """Lightning's evaluation results table (single dataloader)."""
    width = max(25, max(len(k) for k in metrics))
    bar = "─" * (width * 2 + 4)
    title = f"{'Validate' if stage == 'validate' else stage.capitalize()} metric"
    lines = [bar, f"{title:^{width}}  {'DataLoader 0':^{width}}", bar]
    lines += [f"{k:^{width}}  {v:^{width}.6g}" for k, v in sorted(metrics.items())]
    print("\n".join(lines + [bar]))
