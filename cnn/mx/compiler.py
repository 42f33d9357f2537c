"""MLX's look for its CPU compiler, made before a command's work rather than inside it.

On the CPU, ``mx.compile`` builds its fused kernels with g++ and, once per process, first checks
that g++ runs: ``system("g++ --version ...")``. glibc's ``system`` ignores SIGINT and SIGQUIT in
the whole process while that command runs, so a Ctrl-C landing then is discarded by the kernel,
and nothing can catch it (from a terminal it also reaches that g++, and MLX then builds no
kernel for the rest of the run). Left to itself the check comes with the first compiled step,
as a progress bar appears, which is when users stop a command. ``look_for_compiler`` has it
happen before the command's work starts; the few milliseconds in which a SIGINT is lost are
then at start-up (docs/reliability.md). SIGTERM is never ignored.
"""

from __future__ import annotations

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)

import mlx.core as mx


def _plus_one(x: mx.array) -> mx.array:
    return x + 1


def look_for_compiler() -> None:
    """Compile and run one tiny function on the CPU (where MLX compiles with g++), once per
    process: MLX's compiler check, done now."""
    if mx.default_device().type == mx.cpu:
        mx.eval(mx.compile(_plus_one)(mx.array(0.0)))
