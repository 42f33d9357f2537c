"""``python -m cnn.tools.layers``: where a training step's time goes, layer by layer, in both
frameworks.

For each convolution of the seed network (at the shape it runs in, for one dataset and batch
size) it times the forward pass, the weight gradient and the input gradient; for each
ReLU + 2x2 max-pool stage, forward and backward. torch runs channels-last (as ``fit`` does by
default), MLX channels-last (its only layout), both float32 on the CPU. Each figure is the
median of ``--repeats`` timed calls after two untimed ones, in milliseconds per batch, with
the FLOP rate for convolutions. The input gradient of conv1 is listed although training never
computes it (the images need no gradient).

It answers "why is MLX slower here?" with the operation to blame, where ``bench`` gives the
whole step. torch is imported before ``cnn.mx`` so that torch keeps its own BLAS (``cnn.mx``
may load a system OpenBLAS with RTLD_GLOBAL, see ``cnn.mx.blas``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import cnn.mx  # noqa: F401  - loads the optimised BLAS before mlx is imported
from cnn.mx.model import max_pool_2x2

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import torch  # noqa: I001  - before cnn.mx: see the module docstring

from cnn.data.datasets import get_spec
from cnn.schema import CONV_CHANNELS, KERNEL


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``call()`` in ms, after two untimed calls (allocation, kernel choice)."""
    for _ in range(2):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def conv_shapes(dataset: str) -> list[tuple[str, int, int, int]]:
    """``(name, input size, in channels, out channels)`` of the three convolutions."""
    spec = get_spec(dataset)
    size, channels, rows = spec.image_size, spec.channels, []
    for index, out in enumerate(CONV_CHANNELS, start=1):
        rows.append((f"conv{index}", size, channels, out))
        size, channels = size // 2, out
    return rows


def torch_conv(batch: int, size: int, cin: int, cout: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    cl = torch.channels_last
    x = torch.from_numpy(rng.normal(size=(batch, cin, size, size)).astype(np.float32))
    x = x.contiguous(memory_format=cl).requires_grad_(True)
    w = torch.from_numpy(rng.normal(size=(cout, cin, KERNEL, KERNEL)).astype(np.float32) * 0.1)
    w = w.contiguous(memory_format=cl).requires_grad_(True)
    grad = torch.ones(batch, cout, size, size).contiguous(memory_format=cl)

    def forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(x, w, padding=KERNEL // 2)

    out = torch.nn.functional.conv2d(x, w, padding=KERNEL // 2)  # one graph, kept: the
    # backward passes below then time only the gradient asked for (autograd skips the other)

    def gradient(wrt):
        return lambda: torch.autograd.grad(out, wrt, grad, retain_graph=True)
    return {"fwd": median_ms(forward, repeats), "dW": median_ms(gradient(w), repeats),
            "dX": median_ms(gradient(x), repeats)}


def mlx_conv(batch: int, size: int, cin: int, cout: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x = mx.array(rng.normal(size=(batch, size, size, cin)).astype(np.float32))
    w = mx.array(rng.normal(size=(cout, KERNEL, KERNEL, cin)).astype(np.float32) * 0.1)
    grad = mx.ones((batch, size, size, cout))
    conv = mx.compile(lambda x, w: mx.conv2d(x, w, padding=KERNEL // 2))

    def gradient(index):
        vjp = mx.compile(lambda x, w: mx.vjp(lambda *p: conv(*p), [x, w], [grad])[1][index])
        return lambda: mx.eval(vjp(x, w))
    # mx.vjp evaluates only what its outputs need: the forward result is not an output here,
    # but the weight and input gradients of a convolution do not need it either
    return {"fwd": median_ms(lambda: mx.eval(conv(x, w)), repeats),
            "dW": median_ms(gradient(1), repeats), "dX": median_ms(gradient(0), repeats)}


def torch_pool(batch: int, size: int, channels: int, repeats: int) -> dict[str, float]:
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)

    def forward():
        with torch.no_grad():
            return torch.nn.functional.max_pool2d(torch.relu(x), 2)

    out = torch.nn.functional.max_pool2d(torch.relu(x), 2)
    grad = torch.ones_like(out)
    return {"fwd": median_ms(forward, repeats),
            "bwd": median_ms(lambda: torch.autograd.grad(out, x, grad, retain_graph=True), repeats)}


def mlx_pool(batch: int, size: int, channels: int, repeats: int) -> dict[str, float]:
    x = mx.random.normal((batch, size, size, channels))
    pool = mx.compile(lambda x: max_pool_2x2(mnn.relu(x)))
    # the backward pass needs the forward's maxima, so MLX's figure includes a forward
    backward = mx.compile(mx.grad(lambda x: pool(x).sum()))
    return {"fwd": median_ms(lambda: mx.eval(pool(x)), repeats),
            "bwd": median_ms(lambda: mx.eval(backward(x)), repeats)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cnn.tools.layers", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    mx.set_default_device(mx.cpu)
    print(f"{args.dataset}, batch {args.batch_size}, ms per batch (median of {args.repeats}); "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), mlx {mx.__version__}")
    print(f"{'op':<22}{'torch':>9}{'mlx':>9}{'mlx/torch':>11}{'torch GF/s':>12}{'mlx GF/s':>10}")
    totals = {"torch": 0.0, "mlx": 0.0}
    for name, size, cin, cout in conv_shapes(args.dataset):
        flop = 2 * args.batch_size * size * size * cin * cout * KERNEL * KERNEL
        pt = torch_conv(args.batch_size, size, cin, cout, args.repeats)
        mlx_ = mlx_conv(args.batch_size, size, cin, cout, args.repeats)
        for part in ("fwd", "dW", "dX"):
            a, b = pt[part], mlx_[part]
            if not (name == "conv1" and part == "dX"):
                totals["torch"] += a
                totals["mlx"] += b
            label = f"{name} {cin}->{cout} {part}" + (" (unused)" if name == "conv1" and part == "dX" else "")
            print(f"{label:<22}{a:9.2f}{b:9.2f}{b / a:11.1f}{flop / a / 1e6:12.0f}{flop / b / 1e6:10.0f}")
        pt = torch_pool(args.batch_size, size, cout, args.repeats)
        mlx_ = mlx_pool(args.batch_size, size, cout, args.repeats)
        for part in ("fwd", "bwd"):
            a, b = pt[part], mlx_[part]
            totals["torch"] += a
            totals["mlx"] += b
            label = f"relu+pool{name[-1]} {part}"
            print(f"{label:<22}{a:9.2f}{b:9.2f}{b / a:11.1f}")
    print(f"{'sum (used in training)':<22}{totals['torch']:9.2f}{totals['mlx']:9.2f}"
          f"{totals['mlx'] / totals['torch']:11.1f}")


if __name__ == "__main__":
    main()
