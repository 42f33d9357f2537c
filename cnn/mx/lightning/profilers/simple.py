"""Mirror of lightning.pytorch.profilers.simple: ``SimpleProfiler``."""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator, Optional


class SimpleProfiler:
    """Records the wall time of every profiled action (each hook of each callback and of the module, the data
    fetches, the steps, the batches and epochs) and, at ``describe()``, prints Lightning's extended table: action,
    mean duration (s), number of calls, total time (s) and share of the time since the profiler started, slowest
    share first, headed ``<STAGE> Profiler Report``.

    The steps are named as Lightning names them (``[Strategy]SingleDeviceStrategy.training_step`` ...); in
    compiled mode the training step's action includes backward and the optimizer update, which run inside the same
    compiled graph.
    """

    def __init__(self) -> None:
        self.recorded_durations: dict[str, list[float]] = {}
        self.start_time = time.perf_counter()
        self._stage: Optional[str] = None

    def setup(self, stage: str) -> None:
        self._stage = stage

    @contextmanager
    def profile(self, action: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.recorded_durations.setdefault(action, []).append(time.perf_counter() - start)

    def summary(self) -> str:
        sep = os.linesep
        out = (f"{self._stage.upper()} " if self._stage else "") + f"Profiler Report{sep}"
        if not self.recorded_durations:
            return out
        total_duration = time.perf_counter() - self.start_time
        report = sorted(((a, math.fsum(d) / len(d), len(d), math.fsum(d), 100.0 * math.fsum(d) / total_duration)
                         for a, d in self.recorded_durations.items()), key=lambda row: row[4], reverse=True)
        width = max(len(a) for a in self.recorded_durations)

        def row(action: str, mean: str, calls: str, total: str, share: str) -> str:
            return f"{sep}|  {action:<{width}s}\t|  {mean:<15}\t|  {calls:<15}\t|  {total:<15}\t|  {share:<15}\t|"

        header = row("Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %")
        rule = f"{sep}{'-' * len(header.expandtabs())}"
        out += rule + header + rule
        out += row("Total", "-", f"{sum(r[2] for r in report)}", f"{total_duration:.5}", "100 %") + rule
        for action, mean, calls, total, share in report:
            out += row(action, f"{mean:.5}", f"{calls}", f"{total:.5}", f"{share:.5}")
        return out + rule + sep

    def describe(self) -> None:
        """Print the table (on stderr, where Lightning's log lines go) and forget the recorded times."""
        print(self.summary(), file=sys.stderr)
        self.recorded_durations = {}
