"""The clocks of ``cli.py bench``: ``TrainClock`` and ``EvalClock`` read the clock at the window
edges of a ``Plan`` / ``EvalPlan`` through Lightning's hook names, after synchronising the device,
and give one repeat's ``TrainRun`` / ``EvalRun``. Shared by ``bench_torch`` and ``bench_mlx``;
this module never imports torch or mlx.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from cnn.tools.bench_plan import EvalPlan, Plan, batch_images

clock = time.perf_counter  # module attribute, so tests can replace the clock


@dataclass
class Span:
    """A timed window: clock readings in seconds, minus time spent between epochs."""

    start: float | None = None
    end: float | None = None
    excluded: float = 0.0
    steps: int = 0
    images: int = 0

    @property
    def seconds(self) -> float:
        return self.end - self.start - self.excluded

    @property
    def open(self) -> bool:
        return self.start is not None and self.end is None


@dataclass
class TrainRun:
    """One repeat of one variant at one batch size (all times in seconds)."""

    first_step_s: float
    throughput: Span
    fwd_s: list[float]
    bwd_s: list[float]
    epoch: Span | None


@dataclass
class EvalRun:
    """One evaluation repeat of one variant (times in seconds)."""

    throughput: Span
    test: Span


class TrainClock:
    """Reads the clock at the window edges of a ``Plan``, through Lightning's hook names.

    The Lightning and MLX Trainer callbacks inherit it (both call these hooks in the same
    order); the hand-written loops call the same hooks themselves, so every variant is timed
    by one piece of code. ``sync(*arrays)`` must block until the device has finished (and,
    in MLX, evaluate ``arrays``). ``on_before_backward`` ends the forward part of a step;
    with ``backward_includes_forward`` (MLX loops, whose step re-runs the forward) the
    forward time is subtracted from the rest. A window crossing an epoch end does not count
    the time from ``on_train_epoch_end`` to the next ``on_train_epoch_start`` (a trainer's
    epoch-end work: the train-accuracy probe, which the loops do not do).
    """

    def __init__(self, plan: Plan, sync: Callable, built_at: float,
                 backward_includes_forward: bool = False):
        self.plan, self.sync, self.built_at = plan, sync, built_at
        self.backward_includes_forward = backward_includes_forward
        self.step, self.first_step_s = 0, None
        self.spans = {"throughput": Span(), "epoch": Span()}
        self.fwd_s: list[float] = []
        self.bwd_s: list[float] = []
        self._t0 = self._t1 = self._gap_from = None

    def _window(self, k: int) -> tuple[range, Span] | None:
        for name in self.spans:
            window = getattr(self.plan, name)
            if k in window:
                return window, self.spans[name]
        return None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        found = self._window(self.step)
        if found and self.step == found[0].start:
            self.sync()
            found[1].start = clock()
        if self.step in self.plan.fwd_bwd:
            self.sync()
            self._t0, self._t1 = clock(), None

    def on_before_backward(self, trainer, module, loss) -> None:
        if self.step in self.plan.fwd_bwd:
            self.sync(loss)
            self._t1 = clock()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        k = self.step
        if k == 0:
            self.sync()
            self.first_step_s = clock() - self.built_at
        if k in self.plan.fwd_bwd and self._t1 is not None:  # no hook: not separable
            self.sync()
            forward, rest = self._t1 - self._t0, clock() - self._t1
            self.fwd_s.append(forward)
            self.bwd_s.append(rest - forward if self.backward_includes_forward else rest)
        found = self._window(k)
        if found:
            window, span = found
            span.steps, span.images = span.steps + 1, span.images + batch_images(batch)
            if k == window.stop - 1:
                self.sync()
                span.end = clock()
        self.step += 1

    def on_train_epoch_end(self, trainer, module) -> None:
        if any(span.open for span in self.spans.values()):
            self.sync()
            self._gap_from = clock()

    def on_train_epoch_start(self, trainer, module) -> None:
        if self._gap_from is not None:
            self.sync()  # the epoch-end work may have queued device work too
            for span in self.spans.values():
                if span.open:
                    span.excluded += clock() - self._gap_from
            self._gap_from = None

    def result(self) -> TrainRun:
        if self.step < self.plan.total:
            raise RuntimeError(f"the run stopped after {self.step} of {self.plan.total} steps")
        return TrainRun(self.first_step_s, self.spans["throughput"], self.fwd_s, self.bwd_s,
                        self.spans["epoch"] if self.plan.epoch_steps else None)


class EvalClock:
    """``TrainClock``'s counterpart for evaluation batches (validation hook names)."""

    def __init__(self, plan: EvalPlan, sync: Callable):
        self.plan, self.sync, self.index = plan, sync, 0
        self.spans = {"throughput": Span(), "test": Span()}

    def _window(self, k: int) -> tuple[range, Span] | None:
        for name, span in self.spans.items():
            if k in getattr(self.plan, name):
                return getattr(self.plan, name), span
        return None

    def on_validation_batch_start(self, trainer, module, batch, batch_idx,
                                  dataloader_idx: int = 0) -> None:
        found = self._window(self.index)
        if found and self.index == found[0].start:
            self.sync()
            found[1].start = clock()

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx,
                                dataloader_idx: int = 0) -> None:
        found = self._window(self.index)
        if found:
            window, span = found
            span.steps, span.images = span.steps + 1, span.images + batch_images(batch)
            if self.index == window.stop - 1:
                self.sync(outputs)
                span.end = clock()
        self.index += 1

    def result(self) -> EvalRun:
        if self.index < self.plan.total:
            raise RuntimeError(f"evaluation stopped after {self.index} of {self.plan.total}")
        return EvalRun(self.spans["throughput"], self.spans["test"])
