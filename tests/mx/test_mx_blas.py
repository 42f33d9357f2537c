"""MLX's BLAS on a Linux CPU: each route is checked before MLX may use it, an unusable one is
skipped with a note, and with none left MLX keeps its own BLAS and the user is told in one line."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cnn.mx import blas

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's mlx-cpu only")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, timeout=120)


def test_a_fresh_environment_gives_mlx_an_optimised_blas_that_multiplies_correctly():
    # torch is a dependency, so its MKL is there at least, with or without a system OpenBLAS
    result = run_python("""
        import cnn.mx
        from cnn.mx import blas
        import mlx.core as mx
        import numpy as np
        a = np.random.default_rng(0).standard_normal((300, 200), dtype=np.float32)
        error = np.abs(np.array(mx.array(a) @ mx.array(a.T)) - a.astype(np.float64) @ a.T).max()
        print(blas.route().name, blas.route().gflops, error, sep="|")
        """, CNN_BLAS="")
    assert result.returncode == 0, result.stderr
    name, gflops, error = result.stdout.strip().split("|")
    assert name in ("system OpenBLAS", "torch's MKL"), result.stdout
    assert float(gflops) >= blas.MIN_GFLOPS
    assert float(error) < 1e-3  # sums of 200 float32 products of magnitude ~1
    assert "warning" not in result.stderr


def test_a_library_without_sgemm_is_skipped_with_a_note():
    libc = ctypes.util.find_library("c")
    assert blas._try("CNN_BLAS", libc) is None
    assert any(libc in note and "exports no sgemm_" in note for note in blas._notes)


def test_a_library_whose_product_is_wrong_is_refused():
    class ReturnsNothing:
        @staticmethod
        def sgemm_(*args):  # leaves the output matrix as it was: zeros
            return None

    with pytest.raises(ValueError, match="wrong product"):
        blas.check_sgemm(ReturnsNothing())


def test_a_cnn_blas_path_that_fails_falls_through_to_the_next_route():
    result = run_python("import cnn.mx; from cnn.mx import blas; print(blas.status())",
                        CNN_BLAS="/nonexistent/libblas.so")
    assert result.returncode == 0, result.stderr
    assert "CNN_BLAS /nonexistent/libblas.so skipped" in result.stdout
    assert result.stdout.startswith(("system OpenBLAS", "torch's MKL"))


def test_cnn_blas_off_keeps_mlx_own_blas_without_a_warning():
    result = run_python("import cnn.mx; from cnn.mx import blas; print(blas.status())", CNN_BLAS="off")
    assert result.returncode == 0 and result.stdout.startswith("off"), result.stdout + result.stderr
    assert result.stderr == ""


def test_with_no_route_left_mlx_keeps_its_own_blas_and_says_so_in_one_line():
    # blas.py loaded on its own, so importing it loads nothing; then every route is taken away
    result = run_python(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("standalone_blas", {blas.__file__!r})
        b = sys.modules["standalone_blas"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(b)
        b.system_candidates = lambda: []
        b.torch_mkl_path = lambda: None
        print(b.load_optimized_blas())
        """, CNN_BLAS="")
    assert result.returncode == 0, result.stderr
    assert "reference BLAS" in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("warning: MLX runs on its bundled reference BLAS") and "pip install torch" in line


def test_the_blas_tool_reports_the_route_and_a_rate():
    result = subprocess.run([sys.executable, "-m", "cnn.tools.blas"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    route_line, rate_line = result.stdout.splitlines()
    assert route_line.startswith("BLAS: ") and "GFLOP/s" in rate_line


def numpy_sgemm(extra):
    """A correct Fortran ``sgemm_`` for ``check_sgemm``'s products (the same two matrices every call), that
    calls ``extra()`` after each product: a stand-in for a library on a machine other processes keep busy.
    The product is computed once and copied after (numpy's threads would spin on in the time ``extra`` takes,
    as a busy BLAS's do not between back-to-back products)."""
    products = {}

    def sgemm_(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        size = n._obj.value

        def matrix(pointer):
            flat = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(size * size,))
            return flat.reshape((size, size), order="F")

        if "c" not in products:
            products["c"] = matrix(a) @ matrix(b)
        matrix(c)[...] = products["c"]
        extra()

    return type("NumpyBlas", (), {"sgemm_": staticmethod(sgemm_)})()


def test_a_fast_library_passes_its_check_while_other_processes_take_the_cores():
    # 50 ms of wall time a product in which this process gets no CPU: a 512x512 product then rates
    # ~5 GFLOP/s by the wall clock alone, under the bar, though the library itself is fast.
    # In a process of its own, whose threads the test sets: the verdict reads this process's CPU time, which
    # OpenMP or OpenBLAS threads left spinning by earlier tests, or by a caller's OMP_WAIT_POLICY=ACTIVE or
    # thread counts, would fill while the stand-in sleeps.
    result = run_python("""
        import time
        from cnn.mx import blas
        from tests.mx.test_mx_blas import numpy_sgemm
        print(blas.check_sgemm(numpy_sgemm(lambda: time.sleep(0.05))), blas.MIN_GFLOPS)
        """, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    assert result.returncode == 0, result.stderr
    gflops, bar = map(float, result.stdout.split())
    assert gflops >= bar


def test_a_library_slow_by_the_cpu_time_it_takes_is_refused():
    def spin():  # 50 ms of this process's own CPU a product: a slow library, by both clocks
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass

    with pytest.raises(ValueError, match="too slow"):
        blas.check_sgemm(numpy_sgemm(spin))
