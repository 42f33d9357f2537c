"""The Lightning internals the torch side relies on (``cnn.pt.lightning_internals``) exist in the
installed Lightning, and that Lightning is one of the versions they were read from."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import lightning
import pytest
from lightning.pytorch import LightningModule

from cnn.pt import lightning_internals

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("owner, name", [*lightning_internals.CALLED, *lightning_internals.OVERRIDDEN],
                         ids=lambda value: getattr(value, "__name__", value))
def test_every_lightning_internal_we_call_or_override_exists_in_the_installed_lightning(owner, name):
    assert name in vars(owner) or any(name in vars(base) for base in owner.__mro__[1:]), \
        f"Lightning {lightning.__version__} has no {owner.__name__}.{name}"


def test_every_lightning_instance_attribute_we_use_is_set_by_its_constructor():
    for owner, name in lightning_internals.INSTANCE_ATTRIBUTES:
        assert f"self.{name}" in inspect.getsource(owner.__init__), f"{owner.__name__}.{name}"
    assert lightning_internals.INSTANCE_ATTRIBUTES[0][0] is LightningModule


def test_the_pinned_lightning_range_holds_the_versions_the_internals_were_read_from():
    pin = re.search(r'"lightning>=([\d.]+),<([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin, "pyproject.toml pins lightning with a lower and an upper bound"
    low, high = (tuple(int(part) for part in bound.split(".")) for bound in pin.groups())
    version = lambda text: tuple(int(part) for part in text.split(".")[:3])  # noqa: E731
    for read in (*lightning_internals.READ_FROM, lightning.__version__):
        assert low <= version(read) < high, f"{read} outside lightning>={pin[1]},<{pin[2]}"


def test_no_module_outside_lightning_internals_calls_a_lightning_internal_by_name():
    names = {name for _, name in (*lightning_internals.CALLED, *lightning_internals.INSTANCE_ATTRIBUTES)}
    offenders = [f"{path.name}: {name}" for path in (ROOT / "cnn" / "pt").glob("*.py")
                 if path.name != "lightning_internals.py"
                 for name in names if re.search(rf"\b{name}\b", path.read_text())]
    assert offenders == []
