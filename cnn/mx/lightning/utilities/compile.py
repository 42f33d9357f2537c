"""Mirror of lightning.pytorch.utilities.compile: where Lightning's helpers unwrap a ``torch.compile``\\ d module, this
holds the ``mx.compile``\\ d steps of a strategy: one function per kind of step, the ``self.log`` metadata each trace
recorded, the counters a trace reads as inputs, and the fall back to eager mode when a trace fails. It also holds,
as Lightning's holds ``_maybe_unwrap_optimized``, the check that an entry point was given a ``LightningModule``.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

from cnn.mx.lightning.core.module import LightningModule
from cnn.mx.lightning.trainer.connectors.logger_connector.result import LogMeta

import mlx.core as mx
from mlx.utils import tree_flatten


def check_module(model: Any) -> None:
    """Lightning's ``_maybe_unwrap_optimized``: the entry points take a ``LightningModule``."""
    if not isinstance(model, LightningModule):
        raise TypeError(f"`model` must be a `LightningModule`, got `{type(model).__qualname__}`")


def signature(batch: Any) -> tuple:
    """Shapes/dtypes of the batch: mx.compile traces once per signature, so per-trace metadata is keyed by it."""
    return tuple((tuple(a.shape), str(a.dtype)) if isinstance(a, mx.array) else repr(a)
                 for _, a in tree_flatten(batch))


class CompiledSteps:
    """The compiled step functions of one run, by kind (``train/<accumulate>/<step|accumulate>``, ``validation_step``
    ...). ``meta``: per batch signature the ``self.log`` metadata recorded at its trace (the values themselves are
    outputs of the compiled function). ``traced_counters``: while a trace runs, ``current_epoch``/``global_step``
    as the ``mx.array`` inputs the trainer hands out instead of python ints. ``failed``: a trace failed, and every
    step of the run goes eager from then on."""

    def __init__(self) -> None:
        self.functions: dict[str, Callable] = {}
        self.failed = False
        self.meta: dict[tuple, dict[str, LogMeta]] = {}
        self.sig: tuple = ()  # the batch signature of the step running now
        self.traced_counters: dict[str, mx.array] = {}

    def reset(self) -> None:
        """Forget the compiled functions and their metadata (a new run)."""
        self.functions, self.failed, self.meta = {}, False, {}

    def traced(self, fn: Callable, counters: tuple, *args: Any) -> Any:
        """``fn(*args)`` with ``counters`` (current epoch, global step) read as the trainer's counters."""
        self.traced_counters = {"current_epoch": counters[0], "global_step": counters[1]}
        try:
            return fn(*args)
        finally:
            self.traced_counters = {}

    def run(self, kind: str, build: Callable[[], Callable], snapshot: Callable[[], Callable[[], None]],
            *args: Any) -> Optional[Any]:
        """The compiled ``kind`` (built by ``build`` the first time) called with ``args``. Before a new trace
        ``snapshot()`` returns what restores the state the trace captures; a trace that fails restores it, warns
        once, marks the run ``failed`` and returns ``None`` (the caller then runs the step eagerly)."""
        fn = self.functions.get(kind)
        if fn is None:
            fn = self.functions[kind] = build()
        if self.sig in self.meta:  # already traced for this signature
            return fn(*args)
        restore = snapshot()
        try:
            return fn(*args)
        except Exception as e:  # the trace failed
            restore()
            self.failed = True
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            warnings.warn(f"mx.compile failed for {kind} ({type(e).__name__}: {first}); running eagerly instead",
                          RuntimeWarning, stacklevel=4)
            return None
