"""Give MLX's Linux CPU backend an optimised BLAS before ``mlx`` is imported.

Why: the ``mlx-cpu`` wheel for Linux links a bundled *reference* BLAS (``mlx_cpu.libs/
libblas-*.so``): matrix products run tens of times slower than on an optimised BLAS, and
convolutions, which MLX lowers to matrix products on the CPU, follow. The bundled
``cblas_sgemm`` calls the Fortran ``sgemm_`` through the dynamic linker, and ``libmlx.so``
looks its own BLAS symbols up through the process's global scope first, so a library loaded
earlier with ``RTLD_GLOBAL`` that exports ``sgemm_`` takes the products over.

Routes, in order (the first that passes its check wins):

1. ``$CNN_BLAS``: a library path, or ``off`` to keep MLX's own BLAS;
2. a system OpenBLAS (or BLIS): Debian/Ubuntu, Fedora/Arch and conda locations, then the
   dynamic linker's own search;
3. the MKL that torch's CPU wheel bundles inside ``libtorch_cpu.so``, which exports ``sgemm_``
   (torch is a dependency of this project, so a plain ``pip install`` brings it);
4. MLX's bundled reference BLAS, with one warning line saying what to install.

Every candidate is first opened privately (``RTLD_LOCAL``), so its symbols cannot reach MLX
yet, and checked: one ``sgemm_`` product against numpy in float64, and its rate against
``MIN_GFLOPS``. Only a library that passes is made global; one that fails costs a line in
``status()`` and the search goes on. Nothing is done on macOS (MLX uses Accelerate) or when
``mlx`` is already imported (too late to matter; ``status()`` says so).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np

_SYSTEM_CANDIDATES = (
    "/usr/lib/{triple}/openblas-pthread/libopenblas.so.0",
    "/usr/lib/{triple}/libopenblas.so.0",
    "/usr/lib/{triple}/openblas-openmp/libopenblas.so.0",
    "/usr/lib/{triple}/blis-pthread/libblis.so.4",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib/libopenblas.so.0",
    "{prefix}/lib/libopenblas.so.0",
)

# A reference BLAS runs a 512x512 product at a few GFLOP/s, an optimised one at tens to
# hundreds a core: the bar sits far from both, and the rate is taken by the CPU time too
# (check_sgemm), so other work on the machine cannot flip the verdict.
MIN_GFLOPS = 12.0
# float32 products of length 512 agree with float64 to ~1e-6 relative; a wrong calling
# convention (64-bit integers, transposed operands) gives errors of order one.
MAX_RELATIVE_ERROR = 1e-4
_CHECK_SIZE = 512


@dataclass(frozen=True)
class Route:
    """The BLAS that MLX's products go to: which route, the library, and what its check gave
    (``gflops`` is the rate of one float32 ``sgemm_``; 0 where nothing was checked)."""

    name: str
    path: str = ""
    gflops: float = 0.0

    def describe(self) -> str:
        if not self.path:
            return self.name
        return f"{self.name}: {self.path} ({self.gflops:.0f} GFLOP/s in its check)"


_route = Route("not attempted")
_notes: list[str] = []


def system_candidates() -> list[str]:
    """System OpenBLAS/BLIS paths to try, in order (only those that exist)."""
    triple = f"{platform.machine()}-linux-gnu"
    paths = [p.format(triple=triple, prefix=sys.prefix) for p in _SYSTEM_CANDIDATES]
    found = ctypes.util.find_library("openblas")
    if found:
        paths.append(found)
    return [p for p in paths if os.path.exists(p) or not os.path.isabs(p)]


def torch_mkl_path() -> str | None:
    """``libtorch_cpu.so`` of the installed torch, found without importing torch."""
    spec = importlib.util.find_spec("torch")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(location, "lib", "libtorch_cpu.so")
        if os.path.exists(path):
            return path
    return None


def _mlx_bundles_reference_blas() -> bool:
    return any(glob.glob(os.path.join(entry, "mlx_cpu.libs", "libblas-*")) for entry in sys.path)


def check_sgemm(library: ctypes.CDLL) -> float:
    """Multiply two float32 matrices with ``library``'s Fortran ``sgemm_``; return its rate in
    billions of floating-point operations a second, or raise ``ValueError`` if the symbol is
    missing or the product is wrong."""
    try:
        sgemm = library.sgemm_
    except AttributeError:
        raise ValueError("exports no sgemm_") from None
    n = _CHECK_SIZE
    rng = np.random.default_rng(0)
    a, b = (np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32)) for _ in range(2))
    c = np.zeros((n, n), dtype=np.float32, order="F")
    size, one, zero, no = ctypes.c_int(n), ctypes.c_float(1.0), ctypes.c_float(0.0), ctypes.c_char(b"N")

    def product() -> None:
        sgemm(ctypes.byref(no), ctypes.byref(no), *(ctypes.byref(size),) * 3, ctypes.byref(one),
              a.ctypes.data_as(ctypes.c_void_p), ctypes.byref(size),
              b.ctypes.data_as(ctypes.c_void_p), ctypes.byref(size), ctypes.byref(zero),
              c.ctypes.data_as(ctypes.c_void_p), ctypes.byref(size))

    for _ in range(2):  # the first calls start threads and pick kernels
        product()
    exact = a.astype(np.float64) @ b.astype(np.float64)
    error = float(np.linalg.norm(c - exact) / np.linalg.norm(exact))
    if not error <= MAX_RELATIVE_ERROR:
        raise ValueError(f"wrong product (relative error {error:.1e})")
    best = float("inf")
    for _ in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        product()
        # The lesser of wall and CPU time: other processes on the cores stretch the wall time of
        # a fast library (on a busy machine torch's MKL once fell under MIN_GFLOPS by the wall
        # clock alone: docs/performance.md), not the CPU time it needs; a reference BLAS is
        # slow by both clocks.
        best = min(best, time.perf_counter() - start, time.process_time() - start_cpu)
    gflops = 2 * n**3 / best / 1e9
    if gflops < MIN_GFLOPS:
        raise ValueError(f"too slow ({gflops:.1f} GFLOP/s)")
    return gflops


def _try(name: str, path: str) -> Route | None:
    try:
        library = ctypes.CDLL(path, mode=os.RTLD_LOCAL)
        gflops = check_sgemm(library)
        ctypes.CDLL(path, mode=os.RTLD_GLOBAL)  # passed: now MLX's symbol lookups find it
    except (OSError, ValueError) as exc:
        _notes.append(f"{name} {path} skipped: {exc}")
        return None
    return Route(name, path, gflops)


def _search(choice: str) -> Route:
    if choice:
        route = _try("CNN_BLAS", choice)
        if route:
            return route
    for path in system_candidates():
        route = _try("system OpenBLAS", path)
        if route:
            return route
    path = torch_mkl_path()
    if path:
        # torch's MKL threads are OpenMP's, which spin for a while after each product before
        # sleeping. Two processes on the same cores (mlx.launch ranks, parallel test workers)
        # then burn each other's time spinning; sleeping at once costs one wake-up a product.
        # libgomp reads this when it is loaded, so it is set before the probe loads it.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        route = _try("torch's MKL", path)
        if route:
            return route
    return Route("MLX's bundled reference BLAS (slow)")


def load_optimized_blas() -> str:
    """Load an optimised BLAS globally if MLX would otherwise use its reference one.

    Returns (and remembers, for ``status()``) what happened, in a few words. When no route
    passes, one warning line on stderr says what to install; when ``$CNN_BLAS`` fails its check
    and another route passes, one warning line says why and what is used instead.
    """
    global _route
    choice = os.environ.get("CNN_BLAS", "").strip()
    if choice.lower() == "off":
        _route = Route("off (CNN_BLAS=off): MLX's bundled BLAS")
    elif not sys.platform.startswith("linux"):
        _route = Route("not needed on this platform")
    elif "mlx.core" in sys.modules:
        _route = Route("too late: mlx was imported before cnn.mx")
    elif not choice and not _mlx_bundles_reference_blas():
        _route = Route("not needed: this MLX build brings no reference BLAS")
    else:
        _route = _search(choice)
        if choice and _route.path and _route.name != "CNN_BLAS":
            why = next(note for note in _notes if note.startswith("CNN_BLAS "))
            print(f"warning: CNN_BLAS={choice} is not a usable BLAS "
                  f"({why.split(' skipped', 1)[1].lstrip(': ')}); using {_route.describe()} instead",
                  file=sys.stderr)
        if not _route.path:
            tried = "; ".join(_notes) or "no OpenBLAS and no torch found"
            print(f"warning: MLX runs on its bundled reference BLAS, which is far slower ({tried}):"
                  " pip install torch, or apt-get install libopenblas0-pthread, or set CNN_BLAS"
                  " to an optimised libblas", file=sys.stderr)
    return status()


def route() -> Route:
    """The route ``load_optimized_blas`` took."""
    return _route


def status() -> str:
    """What ``load_optimized_blas`` did, in one line, for benchmarks and bug reports."""
    return "; ".join([_route.describe(), *_notes])
