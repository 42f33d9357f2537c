"""Give MLX's Linux CPU backend an optimised BLAS before ``mlx`` is imported.

Why: the ``mlx-cpu`` wheel for Linux links a bundled *reference* BLAS (``mlx_cpu.libs/
libblas-*.so``): matrix products run at a few GFLOP/s, and convolutions, which MLX lowers to
matrix products on the CPU, follow. ``libmlx.so`` looks its BLAS symbols (``cblas_sgemm``, ...)
up through the process's global scope first, so a library loaded earlier with ``RTLD_GLOBAL``
that exports them wins over the bundled one. We load the system's OpenBLAS (or BLIS) that way.

Order of search: ``$CNN_BLAS`` (a path, or ``off`` to keep MLX's own), then the usual places of
Debian/Ubuntu (``libopenblas0-pthread``), Fedora/Arch and conda, then the dynamic linker's
own search for ``libopenblas``. Nothing is done on macOS (MLX uses Accelerate there) or when
``mlx`` is already imported (too late to matter; ``status()`` says so).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import platform
import sys

_CANDIDATES = (
    "/usr/lib/{triple}/openblas-pthread/libopenblas.so.0",
    "/usr/lib/{triple}/libopenblas.so.0",
    "/usr/lib/{triple}/openblas-openmp/libopenblas.so.0",
    "/usr/lib/{triple}/blis-pthread/libblis.so.4",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib/libopenblas.so.0",
    "{prefix}/lib/libopenblas.so.0",
)

_status = "not attempted"


def candidates() -> list[str]:
    """Paths to try, in order (only those that exist)."""
    triple = f"{platform.machine()}-linux-gnu"
    paths = [p.format(triple=triple, prefix=sys.prefix) for p in _CANDIDATES]
    found = ctypes.util.find_library("openblas")
    if found:
        paths.append(found)
    return [p for p in paths if os.path.exists(p) or not os.path.isabs(p)]


def _mlx_bundles_reference_blas() -> bool:
    for entry in sys.path:
        if glob.glob(os.path.join(entry, "mlx_cpu.libs", "libblas-*")):
            return True
    return False


def load_optimized_blas() -> str:
    """Load an optimised BLAS globally if MLX would otherwise use its reference one.

    Returns (and remembers, for ``status()``) what happened, in a few words.
    """
    global _status
    choice = os.environ.get("CNN_BLAS", "")
    if choice.lower() == "off":
        _status = "off (CNN_BLAS=off): MLX's bundled BLAS"
    elif not sys.platform.startswith("linux"):
        _status = "not needed on this platform"
    elif "mlx.core" in sys.modules:
        _status = "too late: mlx was imported before cnn.mx"
    elif not choice and not _mlx_bundles_reference_blas():
        _status = "not needed: this MLX build brings no reference BLAS"
    else:
        _status = "none found: MLX's bundled reference BLAS (install libopenblas0-pthread)"
        for path in ([choice] if choice else candidates()):
            try:
                ctypes.CDLL(path, mode=os.RTLD_GLOBAL)
            except OSError:
                continue
            _status = f"loaded {path}"
            break
    return _status


def status() -> str:
    """What ``load_optimized_blas`` did, for benchmarks and bug reports."""
    return _status

