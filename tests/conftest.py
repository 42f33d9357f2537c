"""Shared fixtures: the real data sets under ../shared/data, read once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data`` beside the project (real MNIST, Fashion-MNIST, CIFAR PNGs)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist(shared_data):
    """The full real MNIST, loaded once through the public loader (no network)."""
    from cnn.data import load_dataset

    return load_dataset("mnist", data_dir=shared_data / "mnist", download=False)
