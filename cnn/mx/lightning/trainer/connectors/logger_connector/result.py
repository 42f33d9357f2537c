"""Mirror of lightning.pytorch.trainer.connectors.logger_connector.result: ``self.log``'s aggregation.

``on_step and on_epoch`` fork the name into ``<name>_step``/``<name>_epoch``, epoch values are the
``batch_size``-weighted mean (or sum/min/max) of the step values, the batch size defaults to ``len`` of the first
array in the batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from cnn.mx.lightning.utilities.exceptions import MisconfigurationException

import mlx.core as mx
import numpy as np


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
    add_dataloader_idx: bool = True
    dataloader_idx: Optional[int] = None  # the loader it was logged for, when an evaluation has several

    def forked_name(self, on_step: bool) -> str:
        if self.on_step and self.on_epoch:
            return f"{self.name}_{'step' if on_step else 'epoch'}"
        return self.name

    def names(self, on_step: bool) -> tuple[str, str]:
        """Lightning's ``_forked_name``: the name and the forked name, ``/dataloader_idx_N`` added for a value
        logged for one of several loaders."""
        name, forked = self.name, self.forked_name(on_step)
        if self.add_dataloader_idx and self.dataloader_idx is not None:
            suffix = f"/dataloader_idx_{self.dataloader_idx}"
            name, forked = name + suffix, forked + suffix
        return name, forked


def check_same_meta(logged: LogMeta, meta: LogMeta) -> None:
    """Lightning's error for one name logged twice in one hook with different arguments (the batch size aside)."""
    if asdict(logged) | {"batch_size": None} != asdict(meta) | {"batch_size": None}:
        raise MisconfigurationException(f"You called `self.log({meta.name}, ...)` twice in `{meta.fx}` with different"
                                        " arguments. This is not allowed")


_INIT = {"max": float("-inf"), "min": float("inf")}


class _Metric:
    """Running aggregate of one key (Lightning's ``_ResultMetric`` with plain python floats)."""

    def __init__(self, meta: LogMeta) -> None:
        self.meta = meta
        self.value = _INIT.get(meta.reduce_fx, 0.0)
        self.cumulated_batch_size = 0.0
        self.step_value: Optional[float] = None
        self.has_reset = False

    def reset(self) -> None:
        self.value = _INIT.get(self.meta.reduce_fx, 0.0)
        self.cumulated_batch_size = 0.0
        self.step_value = None
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
        self.dataloader_idx: Optional[int] = None  # the loader of an evaluation with several

    def log(self, meta: LogMeta, value: float) -> None:
        key = f"{meta.fx}.{meta.name}"
        meta.dataloader_idx = self.dataloader_idx
        if meta.add_dataloader_idx and self.dataloader_idx is not None:
            key += f".{self.dataloader_idx}"
        if key not in self:
            self[key] = _Metric(meta)
        else:
            check_same_meta(self[key].meta, meta)
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

    def metrics(self, on_step: bool) -> dict[str, dict[str, Any]]:
        """The ``log`` / ``callback`` / ``pbar`` views of the current step (``on_step``) or epoch aggregate: scalar
        float32 ``mx.array``s where Lightning keeps tensors (``log``, ``callback``), Python floats in ``pbar``."""
        out: dict[str, dict[str, float]] = {"log": {}, "callback": {}, "pbar": {}}
        for metric in self.values():
            meta = metric.meta
            if metric.has_reset or meta.dataloader_idx != self.dataloader_idx:
                continue
            if on_step and meta.on_step:
                value = metric.step_value
            elif not on_step and meta.on_epoch:
                value = metric.compute()
            else:
                value = None
            if value is None:
                continue
            name, forked = meta.names(on_step)
            array = mx.array(value, dtype=mx.float32)
            if meta.logger:
                out["log"][forked] = array
            if self.training or (meta.on_epoch and not on_step):
                out["callback"][name] = array
                out["callback"][forked] = array
            if meta.prog_bar:
                out["pbar"][forked] = float(array.item())
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
