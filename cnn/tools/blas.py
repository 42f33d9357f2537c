"""``python -m cnn.tools.blas``: which BLAS route MLX took, and the matmul rate MLX gets from it.

``CNN_BLAS=off python -m cnn.tools.blas`` measures MLX's own bundled BLAS for comparison;
``CNN_BLAS=/path/to/libblas.so`` tries that library first.
"""

from __future__ import annotations

import statistics
import time

import cnn.mx  # noqa: F401  - loads the optimised BLAS before mlx is imported
from cnn.mx.blas import status

import mlx.core as mx


def matmul_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Rate, in billions of floating-point operations a second, of a float32 ``size`` x ``size``
    MLX matmul on the default device, over ``repeats`` products after two untimed ones."""
    a = mx.random.normal((size, size))
    mx.eval(a)
    for _ in range(2):  # warm-up: the first calls allocate and pick kernels
        mx.eval(a @ a)
    start = time.perf_counter()
    for _ in range(repeats):
        mx.eval(a @ a)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main(rounds: int = 5) -> None:
    print(f"BLAS: {status()}")
    rates = sorted(matmul_gflops() for _ in range(rounds))
    print(f"1024x1024 float32 matmul in MLX: {statistics.median(rates):.1f} GFLOP/s "
          f"(median of {rounds} rounds of 10; range {rates[0]:.1f}-{rates[-1]:.1f})")


if __name__ == "__main__":
    main()
