"""MLX's buffer cache on the CPU: large enough for a training step's buffers to be reused.

The mlx-cpu allocator keeps freed buffers for reuse only up to its cache limit, by default
far below what one training step of the seed network at batch 128 allocates
(``mx.get_peak_memory()``). Nearly every buffer would then go back to the C library and the
next step fault fresh pages in, so a fit spends much of its CPU time in the kernel. With the
limit raised to ``CPU_CACHE_LIMIT`` a step's buffers are reused (the figures, before and
after: docs/performance.md, "The buffer cache").

The limit is only ever raised: Metal's and CUDA's defaults are already larger. The cache holds
at most the limit in freed buffers, so resident memory can grow by up to that much: a larger
limit costs memory for no more speed (docs/performance.md); evaluation at batch 1000 needs
more than 512 MiB and recycles less, a small part of a fit.
``CNN_MLX_CACHE_LIMIT`` (bytes, or ``off`` to keep MLX's default) overrides it; any other
value is one ``warning:`` line at start-up naming the size used instead.
"""

from __future__ import annotations

import os
import sys

CPU_CACHE_LIMIT = 1 << 29  # 512 MiB: above a batch-128 training step's peak; see the docstring

_status = "not set"


def raise_cache_limit() -> str:
    """Raise MLX's buffer-cache limit to ``CPU_CACHE_LIMIT`` (or ``$CNN_MLX_CACHE_LIMIT``) if
    it is lower; return (and remember, for ``status()``) what happened, in a few words."""
    global _status
    import mlx.core as mx  # only after cnn.mx.blas has had its chance (cnn/mx/__init__.py)

    choice = os.environ.get("CNN_MLX_CACHE_LIMIT", "").strip()
    if choice.lower() == "off":
        _status = "MLX's default (CNN_MLX_CACHE_LIMIT=off)"
        return _status
    note = ""
    try:
        wanted = int(choice) if choice else CPU_CACHE_LIMIT
        if wanted < 0:
            raise ValueError(choice)
    except ValueError:  # an import cannot stop on it: one line at start-up, and status() keeps it
        wanted, note = CPU_CACHE_LIMIT, f"; CNN_MLX_CACHE_LIMIT={choice!r} ignored: not a number"
    previous = mx.set_cache_limit(wanted)
    if previous >= wanted:
        mx.set_cache_limit(previous)  # never lower a backend's larger default
        _status = f"{previous / 2**20:.0f} MiB (MLX's default){note}"
    else:
        _status = f"{wanted / 2**20:.0f} MiB (raised from {previous / 2**20:.0f} MiB){note}"
    if note:
        print(f"warning: CNN_MLX_CACHE_LIMIT={choice!r} is not a number of bytes nor off; using "
              f"{max(previous, wanted) / 2**20:.0f} MiB instead", file=sys.stderr)
    return _status


def status() -> str:
    """What ``raise_cache_limit`` did, for benchmarks and bug reports."""
    return _status
