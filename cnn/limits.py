"""What every value of the config may be: checked once, after parsing, for both frameworks.

``check_config(section)`` takes a trainer subcommand's parsed section (``seed_everything``,
``trainer``, ``model``, ``data``) and raises ``ConfigError`` for the first value out of its
range, in one line naming the key, the value and what is allowed (``--optimizer.*`` and
``--lr_scheduler.*`` included, by argument name: ``check_optimizer_args``). Types are jsonargparse's
business; ranges are ours, so that ``--data.batch_size 0`` or ``--model.lr -1`` stops before
anything is built or written instead of failing deep inside either framework (or, on MLX,
training happily on a negative rate).

``check_batch_fits_memory`` bounds the batch sizes against the machine: a batch's activations
for the forward and backward pass, estimated from the network's layer widths, must fit in half
of the physical memory. (The training batch against the training images is the data layer's
check, once the data is loaded: ``cnn.data.datamodule.check_batch_fits_data``.)
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
from numbers import Real
from typing import Any, Callable

from cnn import schema
from cnn.data.datasets import get_spec
from cnn.errors import ConfigError, DataError
from cnn.schedule import SCHEDULES

SEED_MAX = 2**32 - 1  # numpy's and Lightning's seed range


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _int_at_least(low: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_int(v) and v >= low), f"an integer >= {low}"


def _optional(rule: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    check, allowed = rule
    return (lambda v: v is None or check(v)), f"{allowed}, or null"


def _batches_limit(value: Any) -> bool:
    # Lightning's rule: a count of batches (int, or an integral float from the command line)
    # or a fraction of them.
    return value is None or (_number(value) and value >= 0
                             and (value <= 1 or float(value).is_integer()))


# key -> (accepts(value), what is allowed). Keys absent from a section are skipped (the MLX
# trainer has fewer options than Lightning's; a section may lack ``data`` for a tool).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed_everything": ((lambda v: v is None or isinstance(v, bool) or (_is_int(v) and 0 <= v <= SEED_MAX)),
                        f"true, false or an integer in 0..{SEED_MAX}"),
    "model.lr": ((lambda v: _number(v) and v >= 0), "a finite number >= 0"),
    "model.weight_decay": ((lambda v: _number(v) and v >= 0), "a finite number >= 0"),
    "model.dropout": ((lambda v: _number(v) and 0 <= v < 1), "a number in [0, 1)"),
    "model.label_smoothing": ((lambda v: _number(v) and 0 <= v < 1), "a number in [0, 1)"),
    "model.lr_schedule": ((lambda v: v in SCHEDULES), f"one of {', '.join(SCHEDULES)}"),
    "model.betas": ((lambda v: len(v) == 2 and all(_number(b) and 0 <= b < 1 for b in v)),
                    "two numbers in [0, 1)"),
    "model.conv_backward_chunk": _optional(_int_at_least(1)),
    "data.batch_size": _int_at_least(1),
    "data.eval_batch_size": _int_at_least(1),
    "data.val_fraction": ((lambda v: _number(v) and 0 <= v < 1), "a number in [0, 1)"),
    "trainer.max_epochs": _optional(_int_at_least(-1)),
    "trainer.min_epochs": _optional(_int_at_least(0)),
    "trainer.max_steps": _int_at_least(-1),
    "trainer.min_steps": _optional(_int_at_least(0)),
    "trainer.limit_train_batches": (_batches_limit, "a batch count >= 0 or a fraction in [0, 1]"),
    "trainer.limit_val_batches": (_batches_limit, "a batch count >= 0 or a fraction in [0, 1]"),
    "trainer.limit_test_batches": (_batches_limit, "a batch count >= 0 or a fraction in [0, 1]"),
    "trainer.limit_predict_batches": (_batches_limit, "a batch count >= 0 or a fraction in [0, 1]"),
    "trainer.val_check_interval": ((lambda v: v is None or (_number(v) and v > 0
                                                            and (v <= 1 or float(v).is_integer()))),
                                   "a batch count >= 1 or a fraction in (0, 1], or null"),
    "trainer.check_val_every_n_epoch": _optional(_int_at_least(1)),
    "trainer.num_sanity_val_steps": _optional(_int_at_least(-1)),
    "trainer.log_every_n_steps": _optional(_int_at_least(1)),
    "trainer.accumulate_grad_batches": _int_at_least(1),
    "output": ((lambda v: v is None or (isinstance(v, str) and os.path.splitext(v)[1].lower()
                                        in (".csv", ".json") and not os.path.isdir(v))),
               "a .csv or .json file to write, or null"),
    "trainer.gradient_clip_val": ((lambda v: v is None or (_number(v) and v >= 0)),
                                  "a finite number >= 0, or null"),
}


def _in(low: float, high: float, closed_high: bool = False) -> tuple[Callable[[Any], bool], str]:
    return ((lambda v: _number(v) and low <= v and (v <= high if closed_high else v < high)),
            f"a number in [{low:g}, {high:g}{']' if closed_high else ')'}")


_AT_LEAST_0 = ((lambda v: _number(v) and v >= 0), "a finite number >= 0")
_ABOVE_0 = ((lambda v: _number(v) and v > 0), "a finite number > 0")
# ``--optimizer.*`` and ``--lr_scheduler.*`` arguments, by name on either side (torch's, and the
# MLX twin's it becomes: ``cnn.optimizers``), with the ranges the model's own values get: a
# negative or NaN rate would train uphill or fail deep inside the framework after a step.
OPTIMIZER_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": _AT_LEAST_0, "learning_rate": _AT_LEAST_0, "weight_decay": _AT_LEAST_0, "eps": _AT_LEAST_0,
    "lr_decay": _AT_LEAST_0, "initial_accumulator_value": _AT_LEAST_0,
    "momentum": _in(0, 1), "dampening": _in(0, 1, closed_high=True), "alpha": _in(0, 1, closed_high=True),
    "rho": _in(0, 1, closed_high=True),
    "betas": ((lambda v: isinstance(v, (list, tuple)) and len(v) == 2
               and all(_number(b) and 0 <= b < 1 for b in v)), "two numbers in [0, 1)"),
}
SCHEDULER_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "step_size": _int_at_least(1), "T_max": _int_at_least(1), "decay_steps": _int_at_least(1),
    "total_iters": _int_at_least(1), "steps": _int_at_least(1),
    "gamma": _ABOVE_0, "decay_rate": _ABOVE_0, "eta_min": _AT_LEAST_0, "end": _AT_LEAST_0,
    "start_factor": ((lambda v: _number(v) and 0 < v <= 1), "a number in (0, 1]"),
    "end_factor": _in(0, 1, closed_high=True),
    "milestones": ((lambda v: isinstance(v, (list, tuple)) and all(_is_int(m) and m >= 1 for m in v)),
                   "a list of integers >= 1"),
}


def _as_dict(values) -> dict:
    if values is None or values is _ABSENT:
        return {}
    return values.as_dict() if hasattr(values, "as_dict") else dict(values)


def check_optimizer_args(section) -> None:
    """``ConfigError`` for an ``optimizer`` or ``lr_scheduler`` argument outside its rule, or an
    optimizer whose ``step`` needs a closure (torch's ``LBFGS``): a training step gives none."""
    for key, rules in (("optimizer", OPTIMIZER_RULES), ("lr_scheduler", SCHEDULER_RULES)):
        spec = _as_dict(_get(section, key))
        for name, value in _as_dict(spec.get("init_args")).items():
            accepts, allowed = rules.get(name, (None, ""))
            if accepts is not None and not accepts(value):
                raise ConfigError(f"{key}.{name} is {value!r}; it must be {allowed}")
    path = str(_as_dict(_get(section, "optimizer")).get("class_path") or "")
    module, _, name = path.rpartition(".")
    try:
        step = getattr(importlib.import_module(module), name).step
        closure = inspect.signature(step).parameters.get("closure")
    except (ImportError, AttributeError, TypeError, ValueError):  # not ours to judge here
        return
    if closure is not None and closure.default is inspect.Parameter.empty:
        raise ConfigError(f"optimizer: {path} needs a closure that re-evaluates the loss at each step, "
                          "which a training step does not give; choose another optimizer")


def _get(section, key: str):
    node = section
    for part in key.split("."):
        if node is None:
            return _ABSENT
        try:
            node = node[part] if isinstance(node, dict) else getattr(node, part)
        except (KeyError, AttributeError):
            return _ABSENT
    return node


_ABSENT = object()


def check_config(section) -> None:
    """Raise ``ConfigError`` for the first value of ``section`` outside ``RULES``."""
    for key, (accepts, allowed) in RULES.items():
        value = _get(section, key)
        if value is not _ABSENT and not accepts(value):
            raise ConfigError(f"{key} is {value!r}; it must be {allowed}")
    check_optimizer_args(section)
    check_batch_fits_memory(section)


def activation_bytes(channels: int, image_size: int, training: bool) -> int:
    """An upper estimate of one image's float32 activations in the network: each layer's
    output, its activation and pooling, and (training) their gradients."""
    c1, c2, c3 = schema.CONV_CHANNELS
    s = image_size
    floats = channels * s * s + c1 * s * s + c2 * (s // 2) ** 2 + c3 * (s // 4) ** 2
    copies = 4 if training else 2  # output + activation (+ gradients of both)
    return 4 * floats * copies


def physical_memory() -> int | None:
    """Bytes of physical memory (``os.sysconf``), or None where it cannot be asked."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_batch_fits_memory(section, memory: int | None = None) -> None:
    """``data.batch_size`` (and ``eval_batch_size``, capped at the largest split) must leave
    half of the physical memory free; ConfigError naming what was asked and what fits."""
    memory = memory or physical_memory()
    dataset = _get(section, "data.dataset")
    if not memory or dataset is _ABSENT:
        return
    try:
        shape = [_get(section, f"data.{key}") for key in ("data_dir", "image_size", "channels")]
        spec = get_spec(dataset, *(None if value is _ABSENT else value for value in shape))
    except (DataError, ConfigError):  # an unknown dataset or a bad shape: reported where it is built
        return
    budget = memory // 2
    largest = max(spec.train_size, spec.test_size) or None
    for key, training in (("data.batch_size", True), ("data.eval_batch_size", False)):
        asked = _get(section, key)
        if not _is_int(asked):
            continue
        per_image = activation_bytes(spec.channels, spec.image_size, training)
        used = min(asked, largest) if largest else asked
        if used * per_image > budget:
            fits = max(1, budget // per_image)
            raise ConfigError(f"{key} is {asked}: a batch of {used} {spec.name} images needs about "
                              f"{used * per_image / 2**30:.1f} GiB of activations, more than half of "
                              f"this machine's {memory / 2**30:.1f} GiB; at most {fits} fits")
