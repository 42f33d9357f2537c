"""Mirror of lightning.pytorch.utilities.model_helpers: ``is_overridden``."""

from __future__ import annotations

from typing import Any


def is_overridden(name: str, instance: Any, parent: Any = None) -> bool:
    """Lightning's ``is_overridden``: ``instance.<name>`` is not ``parent``'s; a method set on the instance counts,
    one set to ``None`` (Lightning's way to switch a step or hook off) does not. ``parent`` defaults to the mirror's
    own class ``instance`` derives from (``LightningModule``, ``LightningDataModule``, ``Callback``), found in its
    class's MRO so that this module imports none of them (they import it)."""
    attr = getattr(instance, name, None) if instance is not None else None
    if attr is None:
        return False
    if parent is None:
        parent = next((cls for cls in type(instance).__mro__ if cls.__module__.startswith("cnn.mx.lightning.")), None)
    attr = getattr(attr, "__wrapped__", attr)
    base = getattr(parent, name, None) if parent is not None else None
    code = getattr(getattr(attr, "__func__", attr), "__code__", None)
    return code is None or base is None or code is not getattr(base, "__code__", None)
