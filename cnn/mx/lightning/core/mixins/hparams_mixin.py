"""Mirror of lightning.pytorch.core.mixins.hparams_mixin: ``save_hyperparameters`` and ``hparams``, shared by
``LightningModule`` and ``LightningDataModule``."""

from __future__ import annotations

import copy
import inspect
import sys
import types
import warnings
from argparse import Namespace
from collections.abc import MutableMapping
from typing import Any, Optional, Sequence, Union

from cnn.mx.lightning.core import saving
from cnn.mx.lightning.utilities.parsing import AttributeDict, save_hyperparameters

import mlx.nn as nn

__all__ = ["AttributeDict", "HyperparametersMixin"]

_PRIMITIVE_TYPES = (bool, int, float, str)
_ALLOWED_CONFIG_TYPES = (AttributeDict, MutableMapping, Namespace)


class HyperparametersMixin:
    """Lightning's ``HyperparametersMixin``: ``save_hyperparameters()`` records ``__init__``'s arguments in
    ``hparams`` (as given) and ``hparams_initial`` (frozen, as a checkpoint and ``hparams.yaml`` store them)."""

    def __init__(self) -> None:
        super().__init__()
        # object.__setattr__: nn.Module would store dict values (hparams) as parameter sub-trees.
        object.__setattr__(self, "_hparams", AttributeDict())
        object.__setattr__(self, "_hparams_initial", AttributeDict())
        object.__setattr__(self, "_log_hyperparams", False)
        object.__setattr__(self, "_hparams_name", None)

    @property
    def should_log_hyperparams(self) -> bool:
        """``save_hyperparameters(logger=...)``: the loggers get ``hparams_initial`` at the start of a run (nothing
        without ``save_hyperparameters``, as in Lightning)."""
        return self._log_hyperparams

    def save_hyperparameters(self, *args: Any, ignore: Optional[Union[Sequence[str], str]] = None,
                             frame: Optional[types.FrameType] = None, logger: bool = True) -> None:
        """Record ``__init__`` arguments into ``self.hparams`` (inspecting the caller's frames like Lightning).

        ``save_hyperparameters()`` takes every init argument (of all ``__init__`` frames of this object's class
        chain, a subclass's values winning); ``save_hyperparameters("a", "b")`` only those;
        ``save_hyperparameters(dict_or_namespace)`` that mapping (reloaded by ``load_from_checkpoint`` into the
        argument that passed it). ``ignore`` drops names, also ones a base class saved. A primitive given alone is
        Lightning's ``ValueError``. The result goes to ``hparams.yaml`` and into checkpoints, with its types
        (tuples stay tuples); ``self.hparams`` keeps every value as given; an ``nn.Module`` among them is
        Lightning's warning (its weights are saved anyway), any other value a checkpoint cannot store (a
        function) is recorded there by name, with a one-line note on stderr.
        """
        object.__setattr__(self, "_log_hyperparams", logger)
        if not frame:
            current = inspect.currentframe()
            frame = current.f_back if current else None
        saved = save_hyperparameters(self, *args, ignore=ignore, frame=frame, mixin=HyperparametersMixin)
        if saved is None:
            return
        hp, name, ignore = saved
        object.__setattr__(self, "_hparams_name", name)
        self._set_hparams(hp)
        self.remove_ignored_hparams(ignore)  # a subclass's ignore drops what a base class saved
        self._record_hparams_initial()

    @property
    def hparams_name(self) -> Optional[str]:
        """The name of the ``__init__`` argument the hyper-parameters came in (Lightning's ``_hparams_name``, which
        its checkpoints record); ``None`` before ``save_hyperparameters``."""
        return self._hparams_name

    def _set_hparams(self, hp: Union[MutableMapping, Namespace, str]) -> None:
        hp = self._to_hparams_dict(hp)
        if isinstance(hp, dict) and isinstance(self.hparams, dict):
            self.hparams.update(hp)
        else:
            object.__setattr__(self, "_hparams", hp)

    def remove_ignored_hparams(self, ignore_list: list[str]) -> None:
        """Drop ``ignore_list`` from the hyperparameters (also those a base class saved)."""
        for key in ignore_list:
            self._hparams.pop(key, None)

    @staticmethod
    def _to_hparams_dict(hp: Union[MutableMapping, Namespace, str]) -> Union[MutableMapping, AttributeDict]:
        if isinstance(hp, Namespace):
            hp = vars(hp)
        if isinstance(hp, dict):
            hp = AttributeDict(hp)
        elif isinstance(hp, _PRIMITIVE_TYPES):
            raise ValueError(f"Primitives {_PRIMITIVE_TYPES} are not allowed.")
        elif not isinstance(hp, _ALLOWED_CONFIG_TYPES):
            raise ValueError(f"Unsupported config type of {type(hp)}.")
        return hp

    def _record_hparams_initial(self) -> None:
        """Freeze ``hparams`` into ``hparams_initial`` as a checkpoint stores it; say what it cannot store."""
        for name, value in self._hparams.items():
            if isinstance(value, nn.Module):
                warnings.warn(f"Attribute {name!r} is an instance of `nn.Module` and is already saved during "
                              "checkpointing. It is recommended to ignore them using "
                              f"`self.save_hyperparameters(ignore=[{name!r}])`.", stacklevel=3)
            elif not saving.is_storable(value):
                kind = "function" if callable(value) else type(value).__name__
                print(f"note: save_hyperparameters: {name!r} is a {kind}; checkpoints and "
                      f"hparams.yaml record it by name ({saving.stored_name(value)}), pass it again to "
                      f"load_from_checkpoint (or leave it out with ignore=[{name!r}])", file=sys.stderr)
        stored = saving.storable_hparams(self._hparams)
        object.__setattr__(self, "_hparams_initial", AttributeDict(copy.deepcopy(stored)))

    @property
    def hparams(self) -> Union[AttributeDict, MutableMapping]:
        """The hyperparameters saved with :meth:`save_hyperparameters`; mutable (``hparams_initial`` is not)."""
        return self._hparams

    @property
    def hparams_initial(self) -> AttributeDict:
        """The hyperparameters as :meth:`save_hyperparameters` recorded them (a copy: changes do not stick)."""
        return AttributeDict(copy.deepcopy(dict(self._hparams_initial)))
