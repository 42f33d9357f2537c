"""Mirror of lightning.pytorch.core.mixins.hparams_mixin: ``save_hyperparameters`` and ``hparams``, shared by
``LightningModule`` and ``LightningDataModule``."""

from __future__ import annotations

import copy
import inspect
import sys
from argparse import Namespace
from typing import Any, Optional, Union

from cnn.mx.lightning.core import saving

import mlx.nn as nn


class AttributeDict(dict):
    """``dict`` with attribute access, used for ``hparams`` (Lightning's ``AttributeDict``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(key) from e

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


class HyperparametersMixin:
    """Lightning's ``HyperparametersMixin``: ``save_hyperparameters()`` records ``__init__``'s arguments in
    ``hparams`` (as given) and ``hparams_initial`` (as a checkpoint and ``hparams.yaml`` store them)."""

    def __init__(self) -> None:
        super().__init__()
        # object.__setattr__: nn.Module would store dict values (hparams) as parameter sub-trees.
        object.__setattr__(self, "_hparams", AttributeDict())
        object.__setattr__(self, "_hparams_initial", AttributeDict())
        object.__setattr__(self, "_log_hyperparams", False)  # Lightning: True once save_hyperparameters ran

    @property
    def should_log_hyperparams(self) -> bool:
        """``save_hyperparameters(logger=...)``: the loggers get ``hparams_initial`` at the start of a run."""
        return self._log_hyperparams

    @property
    def hparams(self) -> AttributeDict:
        return self._hparams

    @property
    def hparams_initial(self) -> AttributeDict:
        return AttributeDict(copy.deepcopy(dict(self._hparams_initial)))

    def save_hyperparameters(self, *args: Any, ignore: Optional[Union[str, list]] = None, frame: Any = None,
                             logger: bool = True) -> None:
        """Record ``__init__`` arguments into ``self.hparams`` (inspecting the caller's frame like Lightning).

        ``save_hyperparameters()`` takes every init argument (of all ``__init__`` frames of this object's class
        chain); ``save_hyperparameters("a", "b")`` only those; ``save_hyperparameters(dict_or_namespace)`` that
        mapping. ``ignore`` drops names. The result goes to ``hparams.yaml`` and into checkpoints, with its types
        (tuples stay tuples); ``self.hparams`` keeps every value as given, and a value a checkpoint cannot store
        (a function, a module) is recorded there by name, with a one-line note on stderr.
        """
        object.__setattr__(self, "_log_hyperparams", logger)
        if len(args) == 1 and isinstance(args[0], (dict, Namespace)):
            params = dict(vars(args[0]) if isinstance(args[0], Namespace) else args[0])
        else:
            frame = frame or inspect.currentframe().f_back
            init_args: dict[str, Any] = {}
            chain = []
            while frame is not None and frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is self:
                chain.append(frame)
                frame = frame.f_back
            for fr in reversed(chain):  # base-class frames first so subclass values win
                info = inspect.getargvalues(fr)
                for name in info.args[1:]:
                    init_args[name] = info.locals[name]
                if info.keywords:
                    init_args.update(info.locals[info.keywords])
            params = {k: v for k, v in init_args.items() if not args or k in args}
        ignore = [ignore] if isinstance(ignore, str) else list(ignore or [])
        params = {k: v for k, v in params.items() if k not in ignore and not str(k).startswith("__")}
        for name, value in params.items():
            if not saving.is_storable(value):
                kind = "module" if isinstance(value, nn.Module) else "function" if callable(value) else \
                    type(value).__name__
                print(f"note: save_hyperparameters: {name!r} is a {kind}; checkpoints and "
                      f"hparams.yaml record it by name ({saving.stored_name(value)}), pass it again to "
                      f"load_from_checkpoint (or leave it out with ignore=[{name!r}])", file=sys.stderr)
        self._hparams.update(params)
        stored = saving.storable_hparams(self._hparams)
        object.__setattr__(self, "_hparams_initial", AttributeDict(copy.deepcopy(stored)))
