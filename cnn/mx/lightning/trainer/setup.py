"""Mirror of lightning.pytorch.trainer.setup: the flags the MLX trainer accepts, the batch limits and debugging
flags (``fast_dev_run``, ``overfit_batches``; ``_init_debugging_flags``) and the profiler (``_init_profiler``)."""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping, Optional, Union

from cnn.mx.lightning.loggers.logger import DummyLogger
from cnn.mx.lightning.profilers import PassThroughProfiler, SimpleProfiler
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException

log = logging.getLogger(__name__)

# Per ``Trainer`` argument the MLX trainer restricts: the values it accepts.
UNSUPPORTED: dict[str, tuple] = {
    "strategy": ("auto", "ddp"), "num_nodes": (1,), "barebones": (False,), "sync_batchnorm": (False,),
    "reload_dataloaders_every_n_epochs": (0,), "devices": (1, "1", "auto", -1, [0], (0,)),
    "gradient_clip_algorithm": (None, "norm", "value"), "accelerator": ("auto", "cpu", "gpu", "cuda", "mps"),
}


def check_flags(unsupported: Mapping[str, tuple], given: Mapping[str, Any]) -> None:
    """``ValueError`` for a ``Trainer`` argument outside what the MLX trainer supports (``unsupported``: the values
    allowed per argument) and for Lightning's invalid ``max_epochs``/``max_steps``."""
    for name, allowed in unsupported.items():
        value = given[name]
        # bools only match bools (devices=True is not devices=1), 0 matches False for fast_dev_run
        if not any(value == a and (type(value) is type(a) or not isinstance(value, bool)) for a in allowed):
            hint = ("; for data parallelism start one process per device with `mlx.launch -n N`"
                    if name in ("devices", "num_nodes", "strategy") else "")
            raise ValueError(f"Trainer({name}={value!r}) is not supported by the MLX trainer "
                             f"(supported: {', '.join(map(repr, allowed))}){hint}")
    max_epochs, max_steps = given["max_epochs"], given["max_steps"]
    if max_epochs is not None and max_epochs < -1:
        raise MisconfigurationException(
            f"`max_epochs` must be a non-negative integer or -1. You passed in {max_epochs}.")
    if max_steps < -1:
        raise MisconfigurationException(f"`max_steps` must be a non-negative integer or -1. You passed in {max_steps}.")
    accumulate = given["accumulate_grad_batches"]
    if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
        raise ValueError(f"`accumulate_grad_batches` must be a positive integer, got {accumulate!r}")


def _batch_limit(value: Optional[Union[int, float]], name: str) -> Union[int, float]:
    """Lightning's ``_determine_batch_limits``: ``None`` is 1.0; a fraction in [0, 1] or a whole number of batches;
    an explicit 1 or 1.0 says in an info line which it is (a count or all)."""
    if value is None:
        return 1.0
    if isinstance(value, int) and not isinstance(value, bool) and value == 1:
        message = {"limit_train_batches": "1 batch per epoch will be used.",
                   "val_check_interval": "validation will run after every batch."}.get(name, "1 batch will be used.")
        log.info(f"`Trainer({name}=1)` was configured so {message}")
    elif isinstance(value, float) and value == 1.0:
        message = {"limit_train_batches": "100% of the batches per epoch will be used.",
                   "val_check_interval": "validation will run at the end of the training epoch."
                   }.get(name, "100% of the batches will be used.")
        log.info(f"`Trainer({name}=1.0)` was configured so {message}.")
    if 0 <= value <= 1:
        return value
    if value > 1 and value % 1.0 == 0:
        return int(value)
    raise MisconfigurationException(
        f"You have passed invalid value {value} for {name}, it has to be in [0.0, 1.0] or an int.")


def init_debugging_flags(trainer: Any, limit_train_batches: Optional[Union[int, float]],
                         limit_val_batches: Optional[Union[int, float]],
                         limit_test_batches: Optional[Union[int, float]],
                         limit_predict_batches: Optional[Union[int, float]], fast_dev_run: Union[int, bool],
                         overfit_batches: Union[int, float], val_check_interval: Optional[Union[int, float]],
                         num_sanity_val_steps: Optional[int]) -> None:
    """Set ``trainer``'s batch limits, ``val_check_interval`` and ``num_sanity_val_steps`` (``None``: Lightning's
    defaults, 1.0 and 2; -1 sanity steps: all), then change them as Lightning does for the debugging flags (call
    after the loggers are configured: ``fast_dev_run`` replaces them).

    ``fast_dev_run=N`` (``True``: 1): N batches of training (one epoch, at most N optimizer steps) and validation
    (unless overfitting), and of test and predict; no sanity check, validation once after the N batches, the loggers
    replaced by a :class:`DummyLogger`; ``ModelCheckpoint`` saves nothing but Lightning's ``save_last`` at
    ``on_train_end``. ``overfit_batches=N`` (or a fraction): the first N training batches, unshuffled (the
    DataModule reads the flag), every epoch, and N validation batches.
    """
    if isinstance(fast_dev_run, bool) or fast_dev_run is None:
        fast_dev_run = bool(fast_dev_run)
    elif not isinstance(fast_dev_run, int) or fast_dev_run < 0:
        raise MisconfigurationException(
            f"fast_dev_run={fast_dev_run!r} is not a valid configuration. It should be >= 0.")
    trainer.fast_dev_run = True if fast_dev_run == 1 else fast_dev_run
    trainer.overfit_batches = _batch_limit(overfit_batches, "overfit_batches")
    overfitting = overfit_batches > 0
    trainer.limit_train_batches = trainer.limit_val_batches = 1.0
    sanity = 2 if num_sanity_val_steps is None else num_sanity_val_steps
    trainer.num_sanity_val_steps = math.inf if sanity == -1 else sanity
    if fast_dev_run:
        n = int(fast_dev_run)
        if not overfitting:
            trainer.limit_train_batches = trainer.limit_val_batches = n
        trainer.limit_test_batches = trainer.limit_predict_batches = n
        trainer.max_steps, trainer.max_epochs, trainer.num_sanity_val_steps = n, 1, 0
        trainer.val_check_interval, trainer.check_val_every_n_epoch = 1.0, 1
        trainer.loggers = [DummyLogger()] if trainer.loggers else []
        log.info(f"Running in `fast_dev_run` mode: will run the requested loop using {n} batch(es). Logging and "
                 "checkpointing is suppressed.")
    else:
        if not overfitting:
            trainer.limit_train_batches = _batch_limit(limit_train_batches, "limit_train_batches")
            trainer.limit_val_batches = _batch_limit(limit_val_batches, "limit_val_batches")
        trainer.limit_test_batches = _batch_limit(limit_test_batches, "limit_test_batches")
        trainer.limit_predict_batches = _batch_limit(limit_predict_batches, "limit_predict_batches")
        trainer.val_check_interval = _batch_limit(val_check_interval, "val_check_interval")
    if overfitting:
        trainer.limit_train_batches = trainer.limit_val_batches = trainer.overfit_batches


def make_profiler(profiler: Optional[str]) -> Any:
    """``None`` -> :class:`PassThroughProfiler`; ``"simple"`` -> :class:`SimpleProfiler`."""
    if profiler is None:
        return PassThroughProfiler()
    if profiler == "simple":
        return SimpleProfiler()
    raise ValueError(f"Trainer(profiler={profiler!r}) is not supported by the MLX trainer (supported: None, 'simple')")
