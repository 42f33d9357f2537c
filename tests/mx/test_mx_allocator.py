"""``import cnn.mx`` gives MLX a buffer cache large enough to reuse a training step's memory
(``cnn.mx.allocator``): raised to 512 MiB on the CPU, never lowered, overridable."""

from __future__ import annotations

import os
import subprocess
import sys

import cnn.mx  # noqa: F401
from cnn.mx import allocator

import mlx.core as mx

from tests.cli_runs import ROOT


def cache_limit() -> int:
    limit = mx.set_cache_limit(0)
    mx.set_cache_limit(limit)
    return limit


def in_fresh_python(code: str, **env: str | None) -> str:
    """What ``code`` prints in a new Python, with ``env`` set (None: unset) over this one's environment."""
    environ = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env=environ, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


PROBE = ("import cnn.mx, mlx.core as mx; from cnn.mx import allocator; "
         "print(mx.set_cache_limit(0)); print(allocator.status())")


def test_importing_the_port_raises_the_cache_to_512_mib_unless_mlx_default_is_larger():
    default, _ = in_fresh_python(PROBE, CNN_MLX_CACHE_LIMIT="off").splitlines()
    limit, status = in_fresh_python(PROBE, CNN_MLX_CACHE_LIMIT=None).splitlines()
    assert int(limit) == max(int(default), allocator.CPU_CACHE_LIMIT)
    # the CPU backend's default is below 512 MiB; Metal's and CUDA's, sized from the device, are above it
    assert ("raised from" if int(default) < allocator.CPU_CACHE_LIMIT else "MLX's default") in status


def test_a_larger_limit_is_never_lowered(monkeypatch):
    monkeypatch.delenv("CNN_MLX_CACHE_LIMIT", raising=False)
    before = cache_limit()
    try:
        mx.set_cache_limit(4 * allocator.CPU_CACHE_LIMIT)
        allocator.raise_cache_limit()
        assert cache_limit() == 4 * allocator.CPU_CACHE_LIMIT
        assert "MLX's default" in allocator.status()
    finally:
        mx.set_cache_limit(before)


def test_the_environment_can_keep_mlx_default_or_pick_a_size():
    default, status = in_fresh_python(PROBE, CNN_MLX_CACHE_LIMIT="off").splitlines()
    assert "off" in status
    chosen, _ = in_fresh_python(PROBE, CNN_MLX_CACHE_LIMIT=str(3 << 30)).splitlines()
    assert int(chosen) == max(int(default), 3 << 30)  # a backend's larger default is kept
    fallback, status = in_fresh_python(PROBE, CNN_MLX_CACHE_LIMIT="lots").splitlines()
    assert int(fallback) == max(int(default), allocator.CPU_CACHE_LIMIT) and "'lots' ignored" in status
