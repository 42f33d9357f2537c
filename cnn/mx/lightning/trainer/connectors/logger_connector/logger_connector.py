"""Mirror of lightning.pytorch.trainer.connectors.logger_connector.logger_connector: which values reach the
loggers, when, at which step."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

from cnn.mx.lightning.loggers.logger import Logger
from cnn.mx.lightning.loggers.tensorboard import TensorBoardLogger
from cnn.mx.lightning.trainer.connectors.logger_connector.result import (
    LogMeta,
    ResultCollection,
    check_same_meta,
    to_float,
)
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException

import mlx.core as mx

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
        self.logged: dict[str, mx.array] = {}
        self.callback: dict[str, mx.array] = {}
        self.pbar: dict[str, float] = {}
        self.sync_dist_keys: set[str] = set()  # "fx.name" of the values logged with sync_dist=True

    def on_trainer_init(self, logger: Optional[Union[bool, Logger, list[Logger]]],
                        log_every_n_steps: Optional[int]) -> None:
        """Lightning's: the trainer's ``loggers`` (:func:`configure_loggers`) and ``log_every_n_steps`` (``None``:
        50)."""
        self.trainer.loggers = configure_loggers(logger, self.trainer.default_root_dir)
        self.trainer.log_every_n_steps = 50 if log_every_n_steps is None else log_every_n_steps

    def log(self, meta: LogMeta, value: Any) -> None:
        if self.capture is not None and meta.fx in _CAPTURED_FX:
            key = f"{meta.fx}.{meta.name}"
            if key in self.capture:
                check_same_meta(self.capture[key][0], meta)
            self.capture[key] = (meta, value if isinstance(value, mx.array) else mx.array(value))
            return
        if self.active is None:
            raise MisconfigurationException(
                "You are trying to `self.log()` but the loop's result collection is not registered yet. This is most"
                " likely because you are trying to log in a `predict` hook, but it doesn't support logging")
        self.results[self.active].log(meta, to_float(value))

    def feed(self, logs: Mapping[str, Any], metas: Mapping[str, LogMeta]) -> None:
        """Add the evaluated values a step returned (``key -> scalar``) to the active collection."""
        for key, value in logs.items():
            self.results[self.active].log(metas[key], to_float(value))

    def reset_metrics(self) -> None:
        self.logged, self.callback, self.pbar = {}, {}, {}

    def reset_results(self) -> None:
        """Every loop's collected values cleared (a new run starts)."""
        for results in self.results.values():
            results.reset()

    def update_views(self, metrics: dict[str, dict[str, Any]]) -> None:
        self.pbar.update(metrics["pbar"])
        self.callback.update(metrics["callback"])
        self.logged.update(metrics["log"])

    def view(self, kind: str) -> dict[str, Any]:
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
        epoch_loop = t.fit_loop.epoch_loop
        step = epoch_loop.batches_that_stepped + 1 if t.state.fn == "fit" and t.training \
            else t.evaluation_loop.progress.ready
        return step % t.log_every_n_steps == 0 or t.should_stop

    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        """Write ``metrics``; without ``step``: at ``_batches_that_stepped`` with ``epoch`` added (Lightning)."""
        t = self.trainer
        if not t.loggers or not metrics:
            return
        self.logged.update(metrics)
        scalars = {k: to_float(v) if hasattr(v, "item") else v for k, v in metrics.items()}  # Lightning's scalars
        if step is None:
            step_metric = scalars.pop("step", None)
            if step_metric is not None:
                step = int(step_metric)
            else:
                scalars.setdefault("epoch", t.current_epoch)
                step = t.fit_loop.epoch_loop.batches_that_stepped
        for logger in t.loggers:
            logger.log_metrics(metrics=scalars, step=step)
            logger.save()

    def log_hyperparams(self) -> None:
        """Lightning's ``_log_hyperparams``: module and datamodule ``hparams_initial`` (merged; a key both have with
        different values raises) -> every logger's ``log_hyperparams`` (even when empty), ``log_graph``, ``save()``."""
        model, dm = self.trainer.lightning_module, self.trainer.datamodule
        if not self.trainer.loggers:
            return
        dm_logs = dm is not None and getattr(dm, "should_log_hyperparams", False)
        params: Optional[dict[str, Any]] = None
        if model.should_log_hyperparams and dm_logs:
            lm_params, dm_params = model.hparams_initial, dm.hparams_initial
            inconsistent = [k for k in lm_params.keys() & dm_params.keys() if k != "_class_path" and differ(
                lm_params[k], dm_params[k])]
            if inconsistent:
                raise RuntimeError(f"Error while merging hparams: the keys {inconsistent} are present in both the"
                                   " LightningModule's and LightningDataModule's hparams but have different values.")
            params = {**lm_params, **dm_params}
        elif model.should_log_hyperparams:
            params = dict(model.hparams_initial)
        elif dm_logs:
            params = dict(dm.hparams_initial)
        if params is not None:
            params = {k: v for k, v in params.items() if k != "_class_path"}
        for logger in self.trainer.loggers:
            if params is not None:
                logger.log_hyperparams(params)
            logger.log_graph(model)
            logger.save()


def differ(lm_value: Any, dm_value: Any) -> bool:
    """Lightning's test of one hyper-parameter the module and the datamodule both have: another type, another array
    object, or unequal."""
    if type(lm_value) is not type(dm_value):
        return True
    if isinstance(lm_value, mx.array):
        return lm_value is not dm_value
    return bool(lm_value != dm_value)


def configure_loggers(logger: Optional[Union[bool, Logger, list[Logger]]],
                      default_root_dir: str) -> list[Any]:
    """Lightning's ``configure_logger``: ``True``/``None`` -> a :class:`TensorBoardLogger` in ``default_root_dir``;
    ``False`` -> none; else the logger or list of loggers given."""
    if logger is None or logger is True:
        return [TensorBoardLogger(save_dir=default_root_dir)]
    if logger is False:
        return []
    return list(logger) if isinstance(logger, (list, tuple)) else [logger]
