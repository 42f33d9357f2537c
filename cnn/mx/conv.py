"""A 2-D convolution whose backward pass can run over slices of the batch.

Why: with mlx-cuda, the input gradient of the seed network's third convolution (7x7 input,
50 -> 100 channels, 5x5 kernel, padding 2) fails with ``cudaMallocAsync ... out of memory``
past a batch size of a few thousand images, even on a large card, while smaller batches need
little memory (the batch sizes and peaks: docs/performance.md, "On a GPU").
``SlicedBackwardConv2d`` computes the same forward as ``nn.Conv2d`` and, for batches larger
than its slice size, a backward pass (input and weight gradients) made of one ordinary MLX
convolution backward per slice of at most ``chunk`` images: input-gradient slices
concatenated, weight-gradient slices summed.
"""

from __future__ import annotations

from functools import lru_cache

import mlx.core as mx
import mlx.nn as nn

from cnn.errors import ConfigError

#: The slice size ``chunk=None`` ("auto") means on a GPU: under the batch size at which the
#: failing backward kernel's memory starts to climb (docs/performance.md), and a power of two,
#: so batches of 2048 or less keep the plain graph.
DEFAULT_GPU_CHUNK = 2048


def resolve_chunk(chunk: int | None) -> int | None:
    """The slice size in force now, or ``None`` for no slicing.

    ``None`` ("auto"): ``DEFAULT_GPU_CHUNK`` when MLX's default device is a GPU, else off;
    ``0``: off; a positive number: that many images per slice. Read at trace time, so the device
    the Trainer selects (``accelerator``) decides, not the one current when the model was built.
    """
    if chunk is None:
        return DEFAULT_GPU_CHUNK if mx.default_device() == mx.gpu else None
    return chunk or None


def check_chunk(chunk: int | None) -> None:
    """Refuse what ``resolve_chunk`` cannot read (a negative or non-integer slice size)."""
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0):
        raise ConfigError("conv_backward_chunk must be a whole number >= 0 or None (auto), "
                          f"not {chunk!r}")


@lru_cache(maxsize=None)
def sliced_conv2d(chunk: int, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """``mx.conv2d(x, w, stride, padding, dilation, groups)`` as an ``mx.custom_function`` whose
    vjp runs over batch slices of at most ``chunk`` images (one function per set of arguments)."""

    def conv(x: mx.array, w: mx.array) -> mx.array:
        return mx.conv2d(x, w, stride, padding, dilation, groups)

    sliced = mx.custom_function(conv)

    @sliced.vjp
    def sliced_vjp(primals, cotangent, output):
        x, w = primals
        x_grads, w_grad = [], None
        for start in range(0, x.shape[0], chunk):
            stop = min(start + chunk, x.shape[0])
            _, (x_grad, w_part) = mx.vjp(conv, [x[start:stop], w], [cotangent[start:stop]])
            x_grads.append(x_grad)
            w_grad = w_part if w_grad is None else w_grad + w_part
        return mx.concatenate(x_grads, axis=0), w_grad

    return sliced


class SlicedBackwardConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same forward) whose backward pass runs over slices of
    the batch when the batch is larger than the slice size (``chunk``, see ``resolve_chunk``).

    A batch no larger than the slice size, or slicing off, builds exactly ``nn.Conv2d``'s graph.
    Sliced, the forward pass is unchanged and the gradients equal up to float32 rounding: the
    weight gradient is summed slice by slice, and each slice's input gradient is a matrix product
    of another size, which an optimised BLAS may block differently (the bound is in
    ``tests/mx/test_mx_conv_chunks.py``; with MLX's bundled BLAS they are equal bit for bit).
    """

    def __init__(self, *args, chunk: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        check_chunk(chunk)
        self.chunk = chunk  # an int or None: a plain attribute, not a parameter

    def __call__(self, x: mx.array) -> mx.array:
        chunk = resolve_chunk(self.chunk)
        if chunk is None or x.shape[0] <= chunk:
            return super().__call__(x)
        conv = sliced_conv2d(chunk, self.stride, self.padding, self.dilation, self.groups)
        y = conv(x, self.weight)
        if "bias" in self:
            y = y + self.bias
        return y
