"""Mirror of lightning.fabric.utilities.seed: the global MLX PRNG key, set back (``_set_rng_states``)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def set_rng(key: mx.array) -> None:
    """Make ``key`` the global MLX PRNG key. MLX has no setter, but ``seed(s)`` sets the key to
    ``[s >> 32, s & 0xffffffff]``, so every key is reachable through ``seed``."""
    hi, lo = (int(v) for v in np.array(key, dtype=np.uint32).tolist())
    mx.random.seed((hi << 32) | lo)
