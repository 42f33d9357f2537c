"""Mirror of lightning.pytorch.callbacks.model_checkpoint: ``ModelCheckpoint`` writing ``.safetensors`` files.

Ports the decision logic of Lightning's ``ModelCheckpoint`` (same triggers, names, top-k logic, scores kept as the
metric was logged: ``mx.array`` where Lightning keeps tensors); the files are single ``.safetensors`` files (see
:mod:`cnn.mx.lightning.plugins.io`).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional, Union

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException

import mlx.core as mx
import yaml

from cnn.errors import MonitorError, NonFiniteLossError, TrainingInterrupted
from cnn.runs import relocated_state


def _scalar(value: Optional[float]) -> Optional[mx.array]:
    """A score as Lightning keeps it: a scalar float32 array (``score == 0.3`` holds for a logged 0.3)."""
    return None if value is None else mx.array(value, dtype=mx.float32)



class ModelCheckpoint(Callback):
    """Save ``.safetensors`` checkpoints like Lightning's ``ModelCheckpoint`` (same triggers, names, top-k logic).

    Default file name ``epoch={epoch}-step={step}.safetensors`` in ``<log_dir>/checkpoints`` (or
    ``<default_root_dir>/checkpoints`` without logger); ``save_last`` adds ``last.safetensors`` whenever a checkpoint
    is saved (``save_last="link"``: a relative symbolic link to that checkpoint, a copy where links cannot be made);
    ``best_model_path`` / ``best_model_score`` / ``last_model_path`` as in Lightning. Differences: on a
    ``TrainingInterrupted`` (SIGINT/SIGTERM) or any other ``Exception`` after steps not yet saved, ``last`` is
    written so the run can resume; on a ``NonFiniteLossError``, a second Ctrl-C (``KeyboardInterrupt``) or a
    collective that failed because another rank is gone nothing is ever written (the last good checkpoint stays
    untouched: a step whose gradient average never arrived leaves weights that are no step's). A ``monitor`` not
    logged yet is a warning until validation has run, an error (``MonitorError``, Lightning's
    ``MisconfigurationException``) after, as in Lightning. A moved or copied run folder resumes as in place
    (``cnn.runs.relocated_state``): its ``last`` is rewritten, never left stale beside a new ``last-v1``.
    """

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_EQUALS_CHAR = "="
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".safetensors"
    STARTING_VERSION = 1

    def __init__(self, dirpath: Optional[Union[str, Path]] = None, filename: Optional[str] = None,
                 monitor: Optional[str] = None, verbose: bool = False, save_last: Optional[Union[bool, str]] = None,
                 save_top_k: int = 1, save_on_exception: bool = False, save_weights_only: bool = False,
                 mode: str = "min", auto_insert_metric_name: bool = True, every_n_train_steps: Optional[int] = None,
                 train_time_interval: Optional[timedelta] = None, every_n_epochs: Optional[int] = None,
                 save_on_train_epoch_end: Optional[bool] = None, enable_version_counter: bool = True) -> None:
        if mode not in ("min", "max"):
            raise MisconfigurationException(f"`mode` can be min, max but got {mode}")
        if every_n_train_steps is None and every_n_epochs is None and train_time_interval is None:
            every_n_epochs, every_n_train_steps = 1, 0
        self._train_time_interval = train_time_interval
        self._every_n_epochs = every_n_epochs or 0
        self._every_n_train_steps = every_n_train_steps or 0
        self._last_time_checked: Optional[float] = None
        self.monitor, self.save_top_k = monitor, save_top_k
        self._validate_init_configuration()
        self.dirpath = os.path.realpath(os.path.expanduser(dirpath)) if dirpath and _is_local(dirpath) else \
            (dirpath or None)
        self.filename, self.monitor, self.verbose, self.mode = filename, monitor, verbose, mode
        self.save_last, self.save_top_k, self.save_on_exception = save_last, save_top_k, save_on_exception
        self.save_weights_only, self.auto_insert_metric_name = save_weights_only, auto_insert_metric_name
        self._save_on_train_epoch_end, self._enable_version_counter = save_on_train_epoch_end, enable_version_counter
        self.kth_value: Any = mx.array(math.inf if mode == "min" else -math.inf)
        self.best_k_models: dict[str, Any] = {}
        self.kth_best_model_path = ""
        self.best_model_score: Any = None
        self.best_model_path = ""
        self.last_model_path = ""
        self.current_score: Any = None
        self._last_global_step_saved = 0  # Lightning: no checkpoint before the first step
        self._last_checkpoint_saved = ""
        self._defer_save_until_validation = False
        self._warned: set[str] = set()  # Lightning's WarningCache: each warning once

    def _validate_init_configuration(self) -> None:
        if self.save_top_k < -1:
            raise MisconfigurationException(f"Invalid value for save_top_k={self.save_top_k}. Must be >= -1")
        if self._every_n_train_steps < 0:
            raise MisconfigurationException(
                f"Invalid value for every_n_train_steps={self._every_n_train_steps}. Must be >= 0")
        if self._every_n_epochs < 0:
            raise MisconfigurationException(f"Invalid value for every_n_epochs={self._every_n_epochs}. Must be >= 0")
        triggers = (self._every_n_train_steps >= 1) + (self._every_n_epochs >= 1) + \
            (self._train_time_interval is not None)
        if triggers > 1:
            raise MisconfigurationException(
                f"Combination of parameters every_n_train_steps={self._every_n_train_steps}, "
                f"every_n_epochs={self._every_n_epochs} and train_time_interval={self._train_time_interval} "
                "should be mutually exclusive.")
        if self.monitor is None and self.save_top_k not in (-1, 0, 1):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_top_k={self.save_top_k}, monitor=None) is not a valid configuration. "
                "No quantity for top_k to track.")

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode,
                                        every_n_train_steps=self._every_n_train_steps,
                                        every_n_epochs=self._every_n_epochs,
                                        train_time_interval=self._train_time_interval)

    @property
    def every_n_epochs(self) -> Optional[int]:
        return self._every_n_epochs

    def _resolve_ckpt_dir(self, trainer) -> str:
        """``dirpath`` if given, else ``<logger save_dir>/<name>/<version>/checkpoints`` (``version_N`` for an int
        version), else ``<default_root_dir>/checkpoints``."""
        if self.dirpath is not None:
            return self.dirpath
        if trainer.loggers:
            lg = trainer.loggers[0]
            version = lg.version if isinstance(lg.version, str) else f"version_{lg.version}"
            return os.path.join(lg.save_dir or trainer.default_root_dir, str(lg.name), version, "checkpoints")
        return os.path.join(trainer.default_root_dir, "checkpoints")

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.dirpath = self._resolve_ckpt_dir(trainer)
        if trainer.is_global_zero and stage == "fit" and self.save_top_k != 0 and os.path.isdir(self.dirpath) \
                and os.listdir(self.dirpath):
            warnings.warn(f"Checkpoint directory {self.dirpath} exists and is not empty.", stacklevel=2)
        if self.save_last == "link" and not _is_local(self.dirpath):
            raise ValueError(f"`ModelCheckpoint(save_last='link')` is only supported for local file paths, got "
                             f"`dirpath={self.dirpath}`.")

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_time_checked = time.monotonic()

    # -- triggers (same conditions as Lightning) ---------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        skip_batch = self._every_n_train_steps < 1 or trainer.global_step % self._every_n_train_steps != 0
        skip_time, now = True, time.monotonic()
        if self._train_time_interval is not None:  # a zero interval is valid
            skip_time = self._last_time_checked is None or \
                now - self._last_time_checked < self._train_time_interval.total_seconds()
        if skip_batch and skip_time:
            return
        if not skip_time:
            self._last_time_checked = now
        candidates = self._monitor_candidates(trainer)
        if self.monitor is not None and self.monitor not in candidates:
            self._defer_save_until_validation = True
            return
        if self.monitor is not None and not self._should_save_on_train_epoch_end(trainer) and trainer.is_last_batch \
                and sum(trainer.num_val_batches) and trainer.fit_loop.epoch_loop.should_check_val_epoch():
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
        # Lightning's: `last` only along a checkpoint saved at this step (or refreshed as a link)
        if self._last_global_step_saved == trainer.global_step or (self.save_last == "link"
                                                                   and self._last_checkpoint_saved):
            self._save_last_checkpoint(trainer, candidates)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, NonFiniteLossError) or trainer.sanity_checking or trainer.state.fn != "fit" \
                or getattr(trainer, "fast_dev_run", False) or trainer.strategy.lost_peer(exception):
            return
        candidates = self._monitor_candidates(trainer)
        if isinstance(exception, TrainingInterrupted):
            self._save_last_checkpoint(trainer, candidates, force=True)
        elif self.save_on_exception and self._last_global_step_saved != trainer.global_step:
            self._save_checkpoint(trainer, self.format_checkpoint_name(candidates))
            self._save_last_checkpoint(trainer, candidates)
        elif isinstance(exception, Exception) and self._last_global_step_saved != trainer.global_step:
            # Any other error between steps (a misspelt monitor, a failing callback or logger): the steps trained
            # since the last checkpoint stay resumable. A failed write leaves the previous `last` whole (atomic
            # writes) and the original error is the one to report.
            try:
                self._save_last_checkpoint(trainer, candidates, force=True)
            except OSError:
                pass

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and not self._last_checkpoint_saved:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def state_dict(self) -> dict[str, Any]:
        # the scores as arrays, as Lightning's checkpoint holds tensors (a JSON number in older checkpoints, which
        # load_state_dict reads as well)
        return {"monitor": self.monitor, "best_model_score": self.best_model_score,
                "best_model_path": self.best_model_path, "current_score": self.current_score,
                "dirpath": self.dirpath, "best_k_models": self.best_k_models,
                "kth_best_model_path": self.kth_best_model_path, "kth_value": self.kth_value,
                "last_model_path": self.last_model_path}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # a moved or copied run folder resumes as in place (Lightning would write last-v1)
        state_dict = relocated_state(state_dict, self.dirpath)
        dirpath_from_ckpt = state_dict.get("dirpath", self.dirpath)
        if self.dirpath == dirpath_from_ckpt:
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", self.kth_best_model_path)
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = state_dict.get("best_k_models", self.best_k_models)
            self.last_model_path = state_dict.get("last_model_path", self.last_model_path)
        else:
            warnings.warn(f"The dirpath has changed from {dirpath_from_ckpt!r} to {self.dirpath!r}, therefore "
                          "`best_model_score`, `kth_best_model_path`, `kth_value`, `last_model_path` and "
                          "`best_k_models` won't be reloaded. Only `best_model_path` will be reloaded.", stacklevel=2)
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
        if not sum(trainer.num_val_batches):
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
            # Lightning's rule: an error once validation has run (the key will never come), until then a warning
            # and no top-k checkpoint (`last` is still written).
            message = (f"`ModelCheckpoint(monitor={self.monitor!r})` could not find the monitored key in the "
                       f"returned metrics: {list(candidates)}. HINT: Did you call `log({self.monitor!r}, value)` "
                       "in the `LightningModule`?")
            if trainer.evaluation_loop.progress.seen > 0:
                raise MonitorError(message)
            if message not in self._warned:
                self._warned.add(message)
                warnings.warn(message, stacklevel=2)
            return
        current = candidates[self.monitor]
        if not self._check_monitor_top_k(current):
            return
        k = len(self.best_k_models) + 1 if self.save_top_k == -1 else self.save_top_k
        del_filepath = None
        if len(self.best_k_models) == k and k > 0:
            del_filepath = self.kth_best_model_path
            self.best_k_models.pop(del_filepath)
        if math.isnan(float(current)):  # never a NaN score: the worst one
            current = mx.array(math.inf if self.mode == "min" else -math.inf)
        filepath = self._get_metric_interpolated_filepath_name(candidates, del_filepath)
        self.current_score = _scalar(current)
        self.best_k_models[filepath] = current
        if len(self.best_k_models) == k:
            self.kth_best_model_path = (max if self.mode == "min" else min)(self.best_k_models,
                                                                             key=self.best_k_models.get)
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        self.best_model_path = (min if self.mode == "min" else max)(self.best_k_models, key=self.best_k_models.get)
        self.best_model_score = _scalar(self.best_k_models[self.best_model_path])
        self._save_checkpoint(trainer, filepath)
        if del_filepath and del_filepath != filepath:
            self._remove_checkpoint(trainer, del_filepath)

    def _check_monitor_top_k(self, current: Any) -> bool:
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return True
        current, kth = float(current), float(self.best_k_models[self.kth_best_model_path])
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
        if self.save_last == "link" and self._last_checkpoint_saved and self.save_top_k != 0 and not force:
            self._link_checkpoint(trainer, self._last_checkpoint_saved, filepath)
        else:
            self._save_checkpoint(trainer, filepath)
        if previous and previous != filepath:
            self._remove_checkpoint(trainer, previous)

    @staticmethod
    def _link_checkpoint(trainer, filepath: str, linkpath: str) -> None:
        """``linkpath`` becomes a relative symbolic link to ``filepath`` (replacing a file, link or folder there); a
        copy where links cannot be made."""
        if trainer.is_global_zero and os.path.abspath(filepath) != os.path.abspath(linkpath):
            if os.path.islink(linkpath) or os.path.isfile(linkpath):
                os.remove(linkpath)
            elif os.path.isdir(linkpath):
                shutil.rmtree(linkpath)
            try:
                os.symlink(os.path.relpath(filepath, os.path.dirname(linkpath)), linkpath)
            except OSError:  # no right to make links (Windows): a copy
                shutil.copy(filepath, linkpath)

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

    def _format_checkpoint_name(self, filename: Optional[str], metrics: dict[str, Any], prefix: Optional[str] = None,
                                auto_insert_metric_name: bool = True) -> str:
        """Lightning's name template without folder and extension: ``{epoch}-{val_loss:.2f}`` ->
        ``epoch=3-val_loss=0.12`` (a metric missing is 0); ``prefix`` joined in front."""
        filename = filename or "{epoch}" + self.CHECKPOINT_JOIN_CHAR + "{step}"
        metrics = {k: _formattable(v) for k, v in metrics.items()}
        for group in sorted(re.findall(r"(\{.*?)[:\}]", filename), key=len, reverse=True):
            name = group[1:]
            if auto_insert_metric_name:
                filename = filename.replace(group, name + self.CHECKPOINT_EQUALS_CHAR + "{" + name)
            filename = filename.replace(group, f"{{0[{name}]")  # names with dots
            metrics.setdefault(name, 0)
        filename = filename.format(metrics)
        if prefix is not None:
            filename = self.CHECKPOINT_JOIN_CHAR.join([prefix, filename])
        return filename

    def format_checkpoint_name(self, metrics: dict[str, Any], filename: Optional[str] = None,
                               ver: Optional[int] = None, prefix: Optional[str] = None) -> str:
        """Lightning's name template: ``{epoch}-{val_loss:.2f}`` -> ``epoch=3-val_loss=0.12.safetensors``."""
        filename = self._format_checkpoint_name(filename or self.filename, metrics, prefix=prefix,
                                                auto_insert_metric_name=self.auto_insert_metric_name)
        if ver is not None:
            filename = self.CHECKPOINT_JOIN_CHAR.join((filename, f"v{ver}"))
        name = f"{filename}{self.FILE_EXTENSION}"
        return os.path.join(self.dirpath, name) if self.dirpath else name

    def _find_last_checkpoints(self, trainer) -> set[str]:
        """Lightning's name (its tests call it) for :meth:`last_checkpoints`."""
        return self.last_checkpoints(trainer)

    def last_checkpoints(self, trainer) -> set[str]:
        """The ``last*`` checkpoints (``CHECKPOINT_NAME_LAST``, ``FILE_EXTENSION``) in the checkpoint folder: what
        ``ckpt_path="last"`` chooses from."""
        folder = self._resolve_ckpt_dir(trainer)
        if not os.path.isdir(folder):
            return set()
        pattern = rf"^{self.CHECKPOINT_NAME_LAST}(-(\d+))?"
        return {os.path.normpath(os.path.join(folder, f)) for f in os.listdir(folder)
                if Path(f).suffix == self.FILE_EXTENSION and re.match(pattern, Path(f).stem)}

    def to_yaml(self, filepath: Optional[Union[str, Path]] = None) -> None:
        """Write ``best_k_models`` (checkpoint path -> score) to ``filepath`` (default
        ``<dirpath>/best_k_models.yaml``)."""
        best_k = {k: float(v) for k, v in self.best_k_models.items()}
        if filepath is None:
            filepath = os.path.join(self.dirpath, "best_k_models.yaml")
        with open(filepath, "w") as fp:
            yaml.dump(best_k, fp)


def _is_local(path: Union[str, Path]) -> bool:
    """A path of the local file system (Lightning's ``_is_local_file_protocol``): no ``scheme://`` other than
    ``file://``."""
    text = str(path)
    return "://" not in text or text.startswith("file://")


def _formattable(value: Any) -> Any:
    """A metric as ``str.format`` takes it: a scalar ``mx.array`` as its Python number, as a torch tensor formats."""
    return value.item() if isinstance(value, mx.array) and value.size == 1 else value
