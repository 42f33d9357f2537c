"""Mirror of lightning.fabric.utilities.seed: ``seed_everything``, and the global MLX PRNG key set back
(``_set_rng_states``)."""

from __future__ import annotations

import logging
import os
import random
import warnings
from typing import Optional

import mlx.core as mx
import numpy as np


def set_rng(key: mx.array) -> None:
    """Make ``key`` the global MLX PRNG key. MLX has no setter, but ``seed(s)`` sets the key to
    ``[s >> 32, s & 0xffffffff]``, so every key is reachable through ``seed``."""
    hi, lo = (int(v) for v in np.array(key, dtype=np.uint32).tolist())
    mx.random.seed((hi << 32) | lo)


log = logging.getLogger(__name__)


max_seed_value = np.iinfo(np.uint32).max
min_seed_value = np.iinfo(np.uint32).min


def seed_everything(seed: Optional[int] = None, workers: bool = False, verbose: bool = True) -> int:
    """Lightning's ``seed_everything``: seed Python's ``random``, numpy and MLX's global key with ``seed`` (else
    ``PL_GLOBAL_SEED``, else 0 with a warning), record it in ``PL_GLOBAL_SEED`` (and ``PL_SEED_WORKERS`` for
    ``workers``) and return it. A seed numpy cannot take is Lightning's ``ValueError``."""
    if seed is None:
        env_seed = os.environ.get("PL_GLOBAL_SEED")
        if env_seed is None:
            seed = 0
            if verbose:
                warnings.warn(f"No seed found, seed set to {seed}", stacklevel=2)
        else:
            try:
                seed = int(env_seed)
            except ValueError:
                raise ValueError(f"Invalid seed specified via PL_GLOBAL_SEED: {env_seed!r}") from None
    elif not isinstance(seed, int):
        seed = int(seed)
    if not (min_seed_value <= seed <= max_seed_value):
        raise ValueError(f"{seed} is not in bounds, numpy accepts from {min_seed_value} to {max_seed_value}")
    if verbose:
        log.info(f"Seed set to {seed}")
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)
    os.environ["PL_SEED_WORKERS"] = f"{int(workers)}"
    return seed
