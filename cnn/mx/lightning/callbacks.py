"""Lightning-style callbacks for the MLX trainer.

``Callback`` has Lightning 2.6's hook names and signatures (``trainer, pl_module`` first). ``ModelCheckpoint``,
``EarlyStopping`` and ``LearningRateMonitor`` port the decision logic of their Lightning counterparts
(``lightning/pytorch/callbacks/{model_checkpoint,early_stopping,lr_monitor}.py``) with python floats instead of
tensors; checkpoints are single ``.safetensors`` files (see :mod:`cnn.mx.lightning.checkpoint`).
"""

from __future__ import annotations

import math
import os
import re
import sys
from typing import Any, Optional, Union

from mlx.utils import tree_flatten

from cnn.errors import NonFiniteLossError, TrainingInterrupted


class Callback:
    """Base class; override any hook. Trainer calls them in Lightning's order (see ``Trainer`` docstring)."""

    @property
    def state_key(self) -> str:
        """Key of this callback's ``state_dict`` inside checkpoints (must be unique among stateful callbacks)."""
        return self.__class__.__qualname__

    def _generate_state_key(self, **kwargs: Any) -> str:
        return f"{self.__class__.__qualname__}{repr(kwargs)}"

    def setup(self, trainer, pl_module, stage: str) -> None: ...
    def teardown(self, trainer, pl_module, stage: str) -> None: ...
    def on_fit_start(self, trainer, pl_module) -> None: ...
    def on_fit_end(self, trainer, pl_module) -> None: ...
    def on_sanity_check_start(self, trainer, pl_module) -> None: ...
    def on_sanity_check_end(self, trainer, pl_module) -> None: ...
    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None: ...
    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None: ...
    def on_train_epoch_start(self, trainer, pl_module) -> None: ...
    def on_train_epoch_end(self, trainer, pl_module) -> None: ...
    def on_validation_epoch_start(self, trainer, pl_module) -> None: ...
    def on_validation_epoch_end(self, trainer, pl_module) -> None: ...
    def on_test_epoch_start(self, trainer, pl_module) -> None: ...
    def on_test_epoch_end(self, trainer, pl_module) -> None: ...
    def on_predict_epoch_start(self, trainer, pl_module) -> None: ...
    def on_predict_epoch_end(self, trainer, pl_module) -> None: ...
    def on_validation_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None: ...
    def on_validation_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None: ...
    def on_test_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_test_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None: ...
    def on_predict_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int,
                               dataloader_idx: int = 0) -> None: ...
    def on_predict_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                             dataloader_idx: int = 0) -> None: ...
    def on_train_start(self, trainer, pl_module) -> None: ...
    def on_train_end(self, trainer, pl_module) -> None: ...
    def on_validation_start(self, trainer, pl_module) -> None: ...
    def on_validation_end(self, trainer, pl_module) -> None: ...
    def on_test_start(self, trainer, pl_module) -> None: ...
    def on_test_end(self, trainer, pl_module) -> None: ...
    def on_predict_start(self, trainer, pl_module) -> None: ...
    def on_predict_end(self, trainer, pl_module) -> None: ...
    def on_exception(self, trainer, pl_module, exception: BaseException) -> None: ...
    def state_dict(self) -> dict[str, Any]:
        return {}
    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None: ...
    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None: ...
    # Only called when the trainer runs the step eagerly (compile=False); see Trainer docstring.
    def on_before_backward(self, trainer, pl_module, loss: Any) -> None: ...
    def on_after_backward(self, trainer, pl_module) -> None: ...
    def on_before_optimizer_step(self, trainer, pl_module, optimizer: Any) -> None: ...
    def on_before_zero_grad(self, trainer, pl_module, optimizer: Any) -> None: ...


class ModelCheckpoint(Callback):
    """Save ``.safetensors`` checkpoints like Lightning's ``ModelCheckpoint`` (same triggers, names, top-k logic).

    Default file name ``epoch={epoch}-step={step}.safetensors`` in ``<log_dir>/checkpoints`` (or
    ``<default_root_dir>/checkpoints`` without logger); ``save_last`` adds ``last.safetensors``; ``best_model_path`` /
    ``best_model_score`` / ``last_model_path`` as in Lightning. Differences: ``last`` is rewritten after every
    epoch and validation, whether or not the monitored metric improved; on a ``TrainingInterrupted``
    (SIGINT/SIGTERM) ``last`` is always written so the run can resume; on a ``NonFiniteLossError`` nothing is ever
    written (the last good checkpoint stays untouched).
    """

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_EQUALS_CHAR = "="
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".safetensors"
    STARTING_VERSION = 1

    def __init__(self, dirpath: Optional[str] = None, filename: Optional[str] = None, monitor: Optional[str] = None,
                 verbose: bool = False, save_last: Optional[bool] = None, save_top_k: int = 1,
                 save_on_exception: bool = False, save_weights_only: bool = False, mode: str = "min",
                 auto_insert_metric_name: bool = True, every_n_train_steps: Optional[int] = None,
                 every_n_epochs: Optional[int] = None, save_on_train_epoch_end: Optional[bool] = None,
                 enable_version_counter: bool = True) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` can be min, max but got {mode}")
        if save_top_k < -1:
            raise ValueError(f"Invalid value for save_top_k={save_top_k}. Must be >= -1")
        if monitor is None and save_top_k not in (-1, 0, 1):
            raise ValueError(f"ModelCheckpoint(save_top_k={save_top_k}, monitor=None) is not a valid configuration.")
        if every_n_train_steps is None and every_n_epochs is None:
            every_n_epochs, every_n_train_steps = 1, 0
        self._every_n_epochs = every_n_epochs or 0
        self._every_n_train_steps = every_n_train_steps or 0
        if self._every_n_epochs >= 1 and self._every_n_train_steps >= 1:
            raise ValueError("every_n_train_steps and every_n_epochs are mutually exclusive")
        self.dirpath = os.path.realpath(os.path.expanduser(dirpath)) if dirpath else None
        self.filename, self.monitor, self.verbose, self.mode = filename, monitor, verbose, mode
        self.save_last, self.save_top_k, self.save_on_exception = save_last, save_top_k, save_on_exception
        self.save_weights_only, self.auto_insert_metric_name = save_weights_only, auto_insert_metric_name
        self._save_on_train_epoch_end, self._enable_version_counter = save_on_train_epoch_end, enable_version_counter
        self.kth_value = math.inf if mode == "min" else -math.inf
        self.best_k_models: dict[str, float] = {}
        self.kth_best_model_path = ""
        self.best_model_score: Optional[float] = None
        self.best_model_path = ""
        self.last_model_path = ""
        self.current_score: Optional[float] = None
        self._last_global_step_saved = 0  # Lightning: no checkpoint before the first step
        self._last_checkpoint_saved = ""
        self._defer_save_until_validation = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode,
                                        every_n_train_steps=self._every_n_train_steps,
                                        every_n_epochs=self._every_n_epochs, train_time_interval=None)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.dirpath is None:
            if trainer.loggers:
                lg = trainer.loggers[0]
                version = lg.version if isinstance(lg.version, str) else f"version_{lg.version}"
                self.dirpath = os.path.join(lg.save_dir or trainer.default_root_dir, str(lg.name), version,
                                            "checkpoints")
            else:
                self.dirpath = os.path.join(trainer.default_root_dir, "checkpoints")

    # -- triggers (same conditions as Lightning) ---------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._every_n_train_steps < 1 or trainer.global_step % self._every_n_train_steps != 0:
            return
        candidates = self._monitor_candidates(trainer)
        if self.monitor is not None and self.monitor not in candidates:
            self._defer_save_until_validation = True
            return
        if self.monitor is not None and not self._should_save_on_train_epoch_end(trainer) and trainer.is_last_batch \
                and trainer.num_val_batches and trainer._should_check_val_epoch():
            self._defer_save_until_validation = True
            return
        if self._should_skip_saving_checkpoint(trainer):
            return
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_on_epoch(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer):
            if self._defer_save_until_validation:
                candidates = self._monitor_candidates(trainer)
                self._save_topk_checkpoint(trainer, candidates)
                self._save_last_checkpoint(trainer, candidates)
                self._defer_save_until_validation = False
                return
            self._save_on_epoch(trainer)

    def _save_on_epoch(self, trainer) -> None:
        candidates = self._monitor_candidates(trainer)
        if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
            self._save_topk_checkpoint(trainer, candidates)
        # Unlike Lightning, `last` is the newest state after every epoch or validation, not only
        # after one that also wrote a top-k checkpoint: a crash must not throw epochs away.
        self._save_last_checkpoint(trainer, candidates)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, NonFiniteLossError) or trainer.sanity_checking or trainer.state.fn != "fit" \
                or getattr(trainer, "fast_dev_run", False):
            return
        candidates = self._monitor_candidates(trainer)
        if isinstance(exception, TrainingInterrupted):
            self._save_last_checkpoint(trainer, candidates, force=True)
        elif self.save_on_exception and self._last_global_step_saved != trainer.global_step:
            self._save_checkpoint(trainer, self.format_checkpoint_name(candidates))
            self._save_last_checkpoint(trainer, candidates)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and not self._last_checkpoint_saved:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best_model_score": self.best_model_score,
                "best_model_path": self.best_model_path, "current_score": self.current_score,
                "dirpath": self.dirpath, "best_k_models": self.best_k_models,
                "kth_best_model_path": self.kth_best_model_path, "kth_value": self.kth_value,
                "last_model_path": self.last_model_path}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.dirpath == state_dict.get("dirpath", self.dirpath):
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", self.kth_best_model_path)
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = state_dict.get("best_k_models", self.best_k_models)
            self.last_model_path = state_dict.get("last_model_path", self.last_model_path)
        self.best_model_path = state_dict["best_model_path"]

    # -- helpers ---------------------------------------------------------------------------------------------
    def _should_skip_saving_checkpoint(self, trainer) -> bool:
        return (bool(getattr(trainer, "fast_dev_run", False)) or trainer.state.fn != "fit" or trainer.sanity_checking
                or self._last_global_step_saved == trainer.global_step)

    def _should_save_on_train_epoch_end(self, trainer) -> bool:
        if self._save_on_train_epoch_end is not None:
            return self._save_on_train_epoch_end
        if trainer.check_val_every_n_epoch != 1:
            return False
        if not trainer.num_val_batches:
            return True
        return trainer.val_check_interval in (None, 1.0)

    def _monitor_candidates(self, trainer) -> dict[str, Any]:
        candidates = dict(trainer.callback_metrics)
        candidates["epoch"] = int(candidates.get("epoch", trainer.current_epoch))
        candidates["step"] = int(candidates.get("step", trainer.global_step))
        return candidates

    def _save_topk_checkpoint(self, trainer, candidates: dict[str, Any]) -> None:
        if self.save_top_k == 0:
            return
        if self.monitor is None:
            filepath = self._get_metric_interpolated_filepath_name(candidates, self.best_model_path)
            previous, self.best_model_path = self.best_model_path, filepath
            self._save_checkpoint(trainer, filepath)
            if self.save_top_k == 1 and previous and previous != filepath:
                self._remove_checkpoint(trainer, previous)
            return
        if self.monitor not in candidates:
            raise KeyError(f"`ModelCheckpoint(monitor={self.monitor!r})` could not find the monitored key in the "
                           f"returned metrics: {list(candidates)}. HINT: Did you call `log({self.monitor!r}, value)`?")
        current = float(candidates[self.monitor])
        if not self._check_monitor_top_k(current):
            return
        k = len(self.best_k_models) + 1 if self.save_top_k == -1 else self.save_top_k
        del_filepath = None
        if len(self.best_k_models) == k and k > 0:
            del_filepath = self.kth_best_model_path
            self.best_k_models.pop(del_filepath)
        if math.isnan(current):
            current = math.inf if self.mode == "min" else -math.inf
        filepath = self._get_metric_interpolated_filepath_name(candidates, del_filepath)
        self.current_score = current
        self.best_k_models[filepath] = current
        if len(self.best_k_models) == k:
            self.kth_best_model_path = (max if self.mode == "min" else min)(self.best_k_models,
                                                                             key=self.best_k_models.get)
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        self.best_model_path = (min if self.mode == "min" else max)(self.best_k_models, key=self.best_k_models.get)
        self.best_model_score = self.best_k_models[self.best_model_path]
        self._save_checkpoint(trainer, filepath)
        if del_filepath and del_filepath != filepath:
            self._remove_checkpoint(trainer, del_filepath)

    def _check_monitor_top_k(self, current: float) -> bool:
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return True
        kth = self.best_k_models[self.kth_best_model_path]
        return current < kth if self.mode == "min" else current > kth

    def _save_last_checkpoint(self, trainer, candidates: dict[str, Any], force: bool = False) -> None:
        if not (self.save_last or force):
            return
        filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while os.path.exists(filepath) and filepath != self.last_model_path:
                filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST, ver=version)
                version += 1
        previous, self.last_model_path = self.last_model_path, filepath
        self._save_checkpoint(trainer, filepath)
        if previous and previous != filepath:
            self._remove_checkpoint(trainer, previous)

    def _get_metric_interpolated_filepath_name(self, candidates: dict[str, Any], del_filepath: Optional[str]) -> str:
        filepath = self.format_checkpoint_name(candidates)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while os.path.exists(filepath) and filepath != del_filepath:
                filepath = self.format_checkpoint_name(candidates, ver=version)
                version += 1
        return filepath

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        trainer.save_checkpoint(filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        for logger in trainer.loggers:
            logger.after_save_checkpoint(self)

    def _remove_checkpoint(self, trainer, filepath: str) -> None:
        # Lightning never deletes outside dirpath, nor the checkpoint it resumed from.
        resumed = os.path.abspath(trainer.ckpt_path) if trainer.ckpt_path else None
        if self.dirpath and os.path.dirname(os.path.abspath(filepath)) == os.path.abspath(self.dirpath) \
                and os.path.exists(filepath) and os.path.abspath(filepath) != resumed:
            os.remove(filepath)

    def format_checkpoint_name(self, metrics: dict[str, Any], filename: Optional[str] = None,
                               ver: Optional[int] = None) -> str:
        """Lightning's name template: ``{epoch}-{val_loss:.2f}`` -> ``epoch=3-val_loss=0.12.safetensors``."""
        filename = filename or self.filename or "{epoch}" + self.CHECKPOINT_JOIN_CHAR + "{step}"
        metrics = dict(metrics)
        for group in sorted(re.findall(r"(\{.*?)[:\}]", filename), key=len, reverse=True):
            name = group[1:]
            if self.auto_insert_metric_name:
                filename = filename.replace(group, name + self.CHECKPOINT_EQUALS_CHAR + "{" + name)
            filename = filename.replace(group, f"{{0[{name}]")
            metrics.setdefault(name, 0)
        filename = filename.format(metrics)
        if ver is not None:
            filename = self.CHECKPOINT_JOIN_CHAR.join((filename, f"v{ver}"))
        name = f"{filename}{self.FILE_EXTENSION}"
        return os.path.join(self.dirpath, name) if self.dirpath else name

    def _find_last_checkpoints(self) -> set[str]:
        if not self.dirpath or not os.path.isdir(self.dirpath):
            return set()
        pattern = rf"^{self.CHECKPOINT_NAME_LAST}(-(\d+))?"
        return {os.path.join(self.dirpath, f) for f in os.listdir(self.dirpath)
                if f.endswith(self.FILE_EXTENSION) and re.match(pattern, f[: -len(self.FILE_EXTENSION)])}


class EarlyStopping(Callback):
    """Stop when ``monitor`` stops improving (Lightning's ``EarlyStopping``: same defaults, order and state).

    Checked at ``on_train_epoch_end`` when validation runs every epoch (Lightning's default), else at
    ``on_validation_end``; sets ``trainer.should_stop``.
    """

    def __init__(self, monitor: str, min_delta: float = 0.0, patience: int = 3, verbose: bool = False,
                 mode: str = "min", strict: bool = True, check_finite: bool = True,
                 stopping_threshold: Optional[float] = None, divergence_threshold: Optional[float] = None,
                 check_on_train_epoch_end: Optional[bool] = None) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` can be min, max, got {mode}")
        self.monitor, self.patience, self.verbose, self.mode, self.strict = monitor, patience, verbose, mode, strict
        self.check_finite, self.stopping_threshold = check_finite, stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.min_delta = min_delta if mode == "max" else -min_delta  # Lightning flips the sign for "min"
        self.wait_count, self.stopped_epoch = 0, 0
        self.best_score = math.inf if mode == "min" else -math.inf
        self.stopping_reason_message: Optional[str] = None
        self._check_on_train_epoch_end = check_on_train_epoch_end

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            self._check_on_train_epoch_end = trainer.val_check_interval in (None, 1.0) and \
                trainer.check_val_every_n_epoch == 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._check_on_train_epoch_end and not self._skip(trainer):
            self._run_early_stopping_check(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._check_on_train_epoch_end and not self._skip(trainer):
            self._run_early_stopping_check(trainer)

    def _skip(self, trainer) -> bool:
        return trainer.state.fn != "fit" or trainer.sanity_checking

    def _run_early_stopping_check(self, trainer) -> None:
        logs = trainer.callback_metrics
        if self.monitor not in logs:
            if self.strict:
                raise RuntimeError(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                                   f"Available metrics are: {list(logs)}")
            return
        current = float(logs[self.monitor])
        should_stop, reason = False, None
        if self.check_finite and not math.isfinite(current):
            should_stop, reason = True, f"Monitored metric {self.monitor} = {current} is not finite."
        elif self.stopping_threshold is not None and self._better(current, self.stopping_threshold):
            should_stop, reason = True, f"Stopping threshold reached: {self.monitor} = {current}."
        elif self.divergence_threshold is not None and self._better(-current, -self.divergence_threshold):
            should_stop, reason = True, f"Divergence threshold reached: {self.monitor} = {current}."
        elif self._better(current - self.min_delta, self.best_score):
            self.best_score, self.wait_count = current, 0
            reason = f"Metric {self.monitor} improved. New best score: {current:.3f}"
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                should_stop = True
                reason = (f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records. "
                          f"Best score: {self.best_score:.3f}. Signaling Trainer to stop.")
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            print(reason, file=sys.stderr)

    def state_dict(self) -> dict[str, Any]:
        return {"wait_count": self.wait_count, "stopped_epoch": self.stopped_epoch, "best_score": self.best_score,
                "patience": self.patience, "stopping_reason_message": self.stopping_reason_message}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count, self.stopped_epoch = state_dict["wait_count"], state_dict["stopped_epoch"]
        self.best_score, self.patience = state_dict["best_score"], state_dict["patience"]
        self.stopping_reason_message = state_dict.get("stopping_reason_message")


def _optimizer_name(opt: Any) -> str:
    """The MLX optimizer class a (possibly user-subclassed) optimizer derives from: a torch-faithful ``AdamL2(Adam)``
    is logged as ``lr-Adam`` like Lightning's ``torch.optim.Adam``."""
    for cls in type(opt).__mro__:
        if cls.__module__.startswith("mlx.optimizers"):
            return cls.__name__
    return type(opt).__name__


class LearningRateMonitor(Callback):
    """Log ``lr-<OptimizerClass>`` (or the scheduler config's ``name``) like Lightning's ``LearningRateMonitor``;
    the class is the ``mlx.optimizers`` one the optimizer derives from.

    Scheduled optimizers are logged when their scheduler's interval matches (``"epoch"`` at ``on_train_epoch_start``,
    ``"step"`` at ``on_train_batch_start`` when the trainer would log); an MLX schedule inside the optimizer counts as
    a ``"step"`` scheduler; optimizers without scheduler are logged at both. The logged value is the rate the *next*
    update uses, written straight to the loggers at step ``_batches_that_stepped`` (no ``epoch`` key), as Lightning.
    """

    def __init__(self, logging_interval: Optional[str] = None, log_momentum: bool = False,
                 log_weight_decay: bool = False) -> None:
        if logging_interval not in (None, "step", "epoch"):
            raise ValueError("logging_interval should be `step` or `epoch` or `None`.")
        self.logging_interval, self.log_momentum, self.log_weight_decay = logging_interval, log_momentum, \
            log_weight_decay
        self.lrs: dict[str, list[float]] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.loggers:
            raise ValueError("Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger.")
        self.lrs = {name: [] for name, _ in self._names(trainer)}

    def _names(self, trainer) -> list[tuple[str, Optional[str]]]:
        out = []
        for opt in trainer.optimizers:
            config = next((c for c in trainer.lr_scheduler_configs if c.optimizer is opt), None)
            name = config.name if config is not None and config.name else "lr-" + _optimizer_name(opt)
            interval = config.interval if config is not None else None
            if config is None and "learning_rate" in getattr(opt, "_schedulers", {}):
                interval = "step"  # an MLX schedule advances with every update, like a torch "step" scheduler
            out.append((name, interval))
        return out

    def _log(self, trainer, interval: str) -> None:
        stats = {}
        for (name, sched_interval), opt in zip(self._names(trainer), trainer.optimizers):
            if sched_interval is None or interval in (sched_interval, "any"):
                lr = trainer._next_learning_rate(opt)
                self.lrs.setdefault(name, []).append(lr)
                stats[name] = lr
                if self.log_weight_decay and "weight_decay" in opt.state:
                    stats[f"{name}-weight_decay"] = float(opt.state["weight_decay"])
                if self.log_momentum:
                    betas = getattr(opt, "betas", None)
                    stats[f"{name}-momentum"] = float(betas[0]) if betas else float(getattr(opt, "momentum", 0.0))
        if stats:
            trainer._logger_connector.callback.update(stats)
            for logger in trainer.loggers:
                logger.log_metrics(stats, step=trainer.fit_progress.batches_that_stepped)

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        if trainer._logger_connector.should_update_logs() and self.logging_interval != "epoch":
            self._log(trainer, "step" if self.logging_interval is None else "any")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.logging_interval != "step":
            self._log(trainer, "epoch" if self.logging_interval is None else "any")


class TQDMProgressBar(Callback):
    """Lightning-like tqdm bars: one per training epoch (train + val batches, postfix = ``prog_bar`` metrics and
    ``v_num``), plus transient sanity-check / validation bars and test / predict bars."""

    def __init__(self, refresh_rate: int = 1, leave: bool = False) -> None:
        self.refresh_rate, self.leave = refresh_rate, leave
        self._train = self._eval = None

    def _bar(self, desc: str, total: Any, leave: bool, position: int = 0):
        from tqdm.auto import tqdm

        return tqdm(desc=desc, total=total, leave=leave, position=position, dynamic_ncols=True, file=sys.stdout,
                    smoothing=0)

    def _metrics(self, trainer) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if trainer.loggers and trainer.loggers[0].version is not None:
            v = trainer.loggers[0].version
            out["v_num"] = v[-4:] if isinstance(v, str) else v
        for k, v in trainer.progress_bar_metrics.items():
            out[k] = f"{v:.3g}" if isinstance(v, float) else v
        return out

    def _step(self, bar, n: int, trainer=None) -> None:
        if bar is not None and (n % self.refresh_rate == 0 or n == bar.total):
            bar.n = n
            if trainer is not None:
                bar.set_postfix(self._metrics(trainer), refresh=False)
            bar.refresh()

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._eval = self._bar("Sanity Checking", None, False)

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        if self._eval is not None:
            self._eval.close()
            self._eval = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._train is not None:
            self._train.close()
        # Lightning 2.x counts training batches only; validation has its own bar
        self._train = self._bar(f"Epoch {trainer.current_epoch}", trainer.num_training_batches, True)
        self._train.n = trainer.fit_progress.batch_in_epoch

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._step(self._train, batch_idx + 1, trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._train is not None:
            self._train.set_postfix(self._metrics(trainer))

    def on_train_end(self, trainer, pl_module) -> None:
        if self._train is not None:
            self._train.close()
            self._train = None

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._eval = self._bar("Validation", trainer.num_val_batches, self.leave and trainer.state.fn != "fit",
                                   position=1 if self._train is not None else 0)

    def on_validation_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        self._step(self._eval, batch_idx + 1)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._eval is not None and not trainer.sanity_checking:
            self._eval.close()
            self._eval = None
        if self._train is not None:
            self._train.set_postfix(self._metrics(trainer))

    def on_test_start(self, trainer, pl_module) -> None:
        self._eval = self._bar("Testing", trainer.num_test_batches, True)

    def on_test_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        self._step(self._eval, batch_idx + 1)

    def on_test_end(self, trainer, pl_module) -> None:
        if self._eval is not None:
            self._eval.close()
            self._eval = None

    def on_predict_start(self, trainer, pl_module) -> None:
        self._eval = self._bar("Predicting", trainer.num_predict_batches, True)

    def on_predict_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                             dataloader_idx: int = 0) -> None:
        self._step(self._eval, batch_idx + 1)

    def on_predict_end(self, trainer, pl_module) -> None:
        self.on_test_end(trainer, pl_module)


class ModelSummary(Callback):
    """Print a table of the top-level sub-modules and parameter counts at ``on_fit_start`` (Lightning's
    summary). Frozen arrays count as non-trainable parameters; buffers (``register_buffer``) are not
    parameters, as in torch."""

    def on_fit_start(self, trainer, pl_module) -> None:
        rows = []
        for name, child in pl_module.children().items():
            children = child if isinstance(child, (list, tuple)) else [child]
            n = sum(v.size for c in children if hasattr(c, "parameters") for _, v in tree_flatten(c.parameters()))
            rows.append((name, type(child).__name__, n))
        buffers = getattr(pl_module, "buffer_names", frozenset())
        trainable = sum(v.size for k, v in tree_flatten(pl_module.trainable_parameters()) if k not in buffers)
        total = sum(v.size for k, v in tree_flatten(pl_module.parameters()) if k not in buffers)
        lines = [f"  | {'Name':<20} | {'Type':<20} | {'Params':>10}", "-" * 60]
        lines += [f"{i} | {n:<20} | {t:<20} | {p:>10,}" for i, (n, t, p) in enumerate(rows)]
        lines += ["-" * 60, f"{trainable:,} Trainable params", f"{total - trainable:,} Non-trainable params",
                  f"{total:,} Total params"]
        print("\n".join(lines))


def _reorder_callbacks(callbacks: list[Callback]) -> list[Callback]:
    """Checkpoint callbacks last, preserving relative order (Lightning's ``_reorder_callbacks``)."""
    return [c for c in callbacks if not isinstance(c, ModelCheckpoint)] + \
        [c for c in callbacks if isinstance(c, ModelCheckpoint)]


CallbackType = Union[Callback, list[Callback]]
