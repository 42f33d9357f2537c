"""Mirror of lightning.pytorch.profilers."""

from cnn.mx.lightning.profilers.passthrough import PassThroughProfiler
from cnn.mx.lightning.profilers.simple import SimpleProfiler

__all__ = ["PassThroughProfiler", "SimpleProfiler"]
