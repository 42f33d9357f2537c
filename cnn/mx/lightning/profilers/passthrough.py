"""Mirror of lightning.pytorch.profilers.passthrough: ``PassThroughProfiler``."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ContextManager


class PassThroughProfiler:
    """No profiler: ``profile`` records nothing, ``describe`` prints nothing."""

    def setup(self, stage: str) -> None: ...

    def profile(self, action: str) -> ContextManager[Any]:
        return nullcontext()

    def describe(self) -> None: ...
