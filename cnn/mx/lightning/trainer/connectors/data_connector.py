"""Mirror of lightning.pytorch.trainer.connectors.data_connector: where each entry point's batches come from, and
how many of them run.

A source is Lightning's ``_DataLoaderSource``: the loaders given to the entry point, else the datamodule's
``*_dataloader()``, else the module's own. What a source returns is one loader, or a list/tuple/dict of them
(several validation/test/predict loaders, run one after the other with ``dataloader_idx``). A loader without
``len()`` (an ``IterableDataset``, a generator) counts as ``inf`` batches: it runs until it is exhausted or
``limit_*_batches``/``max_steps`` stop it.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Optional, Union

from cnn.mx.lightning.core.datamodule import loader_hook
from cnn.mx.lightning.core.module import LightningModule
from cnn.mx.lightning.trainer.call import call_lightning_module_hook
from cnn.mx.lightning.utilities.exceptions import MisconfigurationException
from cnn.mx.lightning.utilities.model_helpers import is_overridden

PREFIX = {"fit": "train", "validate": "val", "test": "test", "predict": "predict"}


def parse_num_batches(length: Union[int, float], limit: Union[int, float], what: str) -> Union[int, float]:
    """Lightning's ``_parse_num_batches``: ``limit`` batches (an int) or that fraction (a float) of ``length``
    (``inf`` for a loader without ``len()``, which takes only an int or 1.0); a whole float above 1 (a YAML's
    ``3.0``) is a count, as in Lightning's ``_determine_batch_limits``."""
    if isinstance(limit, float) and limit > 1.0 and limit.is_integer():
        limit = int(limit)
    if length == 0:
        return 0
    n = length
    if isinstance(limit, int):
        n = min(length, limit)
    elif isinstance(limit, float) and length != math.inf:
        n = int(length * limit)
    elif limit != 1.0:
        raise MisconfigurationException(
            f"When using an `IterableDataset`, `Trainer(limit_{what}_batches)` must be `1.0` or an int. An int "
            f"specifies `num_{what}_batches` to use.")
    if n == 0 and isinstance(limit, float) and limit > 0.0 and length != math.inf:
        raise MisconfigurationException(
            f"You requested to check {limit} of the `{what}_dataloader` but {limit} * {length} < 1. Please increase "
            f"the `limit_{what}_batches` argument. Try at least `limit_{what}_batches={1.0 / length}`")
    return n


def loader_length(loader: Any) -> Union[int, float]:
    """``len(loader)``, or ``inf`` for an iterable without a length (Lightning's ``has_len``)."""
    try:
        return len(loader)
    except (TypeError, NotImplementedError):
        return math.inf


def as_loader_list(loaders: Any) -> list[Any]:
    """The loaders a source returned, in ``dataloader_idx`` order (Lightning's ``CombinedLoader`` "sequential")."""
    if loaders is None:
        return []
    if isinstance(loaders, dict):
        return list(loaders.values())
    if isinstance(loaders, (list, tuple)) and loaders and all(_is_loader(x) for x in loaders):
        return list(loaders)
    return [loaders]


def _is_loader(obj: Any) -> bool:
    # a list of batches (arrays) is one loader; a list of loaders (iterables that are not arrays) several
    return hasattr(obj, "__iter__") and not hasattr(obj, "shape")


class DataConnector:
    """The loaders of a run: each stage's source (see the module docstring), and its loaders made once on first
    use in a run."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.sources: dict[str, Optional[Callable[[], Any]]] = dict.fromkeys(PREFIX.values())
        self.loaders: dict[str, Any] = {}  # prefix -> what the source returned, this run

    def on_trainer_init(self, val_check_interval: Optional[Union[int, float]],
                        check_val_every_n_epoch: Optional[int]) -> None:
        """Lightning's: no datamodule yet, and ``trainer.check_val_every_n_epoch`` (an int, or ``None`` when
        ``val_check_interval`` counts batches across epochs)."""
        self.trainer.datamodule = None
        check_every = check_val_every_n_epoch
        if check_every is not None and not isinstance(check_every, int):
            raise MisconfigurationException(f"`check_val_every_n_epoch` should be an integer, found {check_every!r}.")
        if check_every is None and isinstance(val_check_interval, float):
            raise MisconfigurationException(
                "`val_check_interval` should be an integer or a time-based duration (str 'DD:HH:MM:SS', "
                "datetime.timedelta, or dict kwargs for timedelta) when `check_val_every_n_epoch=None`.")
        self.trainer.check_val_every_n_epoch = check_val_every_n_epoch

    @property
    def train_source(self) -> Optional[Callable[[], Any]]:
        return self.sources["train"]

    @property
    def val_source(self) -> Optional[Callable[[], Any]]:
        return self.sources["val"]

    def attach_trainer_to_datamodule(self) -> None:
        """``datamodule.trainer``, as Lightning sets it before ``setup`` (the DataModule shards by the ranks)."""
        if self.trainer.datamodule is not None:
            try:
                self.trainer.datamodule.trainer = self.trainer
            except AttributeError:
                pass

    def prepare_data(self) -> None:
        """``prepare_data`` of the datamodule and the module, rank zero first: the others wait for it, then find
        the files it downloaded."""
        trainer = self.trainer
        if trainer.world_size > 1 and not trainer.is_global_zero:
            trainer.strategy.barrier()
        if trainer.datamodule is not None and hasattr(trainer.datamodule, "prepare_data"):
            trainer.datamodule.prepare_data()
        call_lightning_module_hook(trainer, "prepare_data")
        if trainer.world_size > 1 and trainer.is_global_zero:
            trainer.strategy.barrier()

    def _source(self, given: Any, datamodule: Any, model: Any, prefix: str) -> Optional[Callable[[], Any]]:
        """Lightning's ``_DataLoaderSource``: the loaders given, else the datamodule's hook (when it has one, the
        module's is not looked at), else the module's own hook when it overrides it."""
        name = f"{prefix}_dataloader"
        if given is not None:
            return lambda: given
        if datamodule is not None:
            return loader_hook(datamodule, name)
        if is_overridden(name, model):
            return lambda: call_lightning_module_hook(self.trainer, name)
        return None

    def attach_fit_data(self, model: Any, train_dataloaders: Any, val_dataloaders: Any, datamodule: Any) -> None:
        """``fit``'s loaders. A datamodule given as ``train_dataloaders`` is taken as the datamodule, as Lightning
        does."""
        if hasattr(train_dataloaders, "train_dataloader") and not isinstance(train_dataloaders, LightningModule):
            datamodule, train_dataloaders = train_dataloaders, None
        if datamodule is not None and (train_dataloaders is not None or val_dataloaders is not None):
            raise MisconfigurationException(
                "You cannot pass `train_dataloader` or `val_dataloaders` to `trainer.fit(datamodule=...)`")
        self.trainer.datamodule = datamodule
        self.sources["train"] = self._source(train_dataloaders, datamodule, model, "train")
        self.sources["val"] = self._source(val_dataloaders, datamodule, model, "val")
        if self.sources["train"] is None:
            where = type(datamodule).__name__ if datamodule is not None else type(model).__name__
            raise MisconfigurationException(
                f"An invalid dataloader was passed to `Trainer.fit(train_dataloaders=...)`. Found None. Either pass "
                f"the dataloader to the `.fit()` method OR implement `def train_dataloader(self):` in {where}.")
        self.loaders.pop("train", None)
        self.loaders.pop("val", None)

    def attach_eval_data(self, fn: str, model: Any, dataloaders: Any, datamodule: Any) -> None:
        """``fn``'s loaders: the ``dataloaders`` given (no datamodule then), else ``datamodule``'s, else those of
        the datamodule of the previous run (which stays ``trainer.datamodule``), else the module's own. A datamodule
        given as ``dataloaders`` is taken as the datamodule, as Lightning does."""
        if dataloaders is not None and hasattr(dataloaders, "setup") and not hasattr(dataloaders, "__len__"):
            datamodule, dataloaders = dataloaders, None
        if dataloaders is not None and datamodule is not None:
            raise MisconfigurationException(
                f"You cannot pass both `trainer.{fn}(dataloaders=..., datamodule=...)`")
        trainer = self.trainer
        trainer.datamodule = datamodule if datamodule is not None else (trainer.datamodule if dataloaders is None
                                                                        else None)
        prefix = PREFIX[fn]
        source = self._source(dataloaders, trainer.datamodule, model, prefix)
        if source is None:
            raise MisconfigurationException(
                f"No `{prefix}_dataloader()` method defined to run `Trainer.{fn}`.")
        self.sources[prefix] = source
        self.loaders.pop(prefix, None)

    def dataloaders(self, prefix: str) -> Any:
        """What ``prefix``'s source returned in this run (``None`` when it has none)."""
        if prefix not in self.loaders:
            source = self.sources[prefix]
            self.loaders[prefix] = None if source is None else source()
        return self.loaders[prefix]

    def loader_list(self, prefix: str) -> list[Any]:
        return as_loader_list(self.dataloaders(prefix))

    def setup_train_data(self) -> None:
        """Make the train loader (once) and count its batches (``trainer.num_training_batches``), as Lightning's
        ``_FitLoop.setup_data``: the validation cadence is checked against it."""
        if "train" in self.loaders:
            return
        trainer = self.trainer
        loader = self.dataloaders("train")
        length = loader_length(loader)
        trainer.num_training_batches = parse_num_batches(length, trainer.limit_train_batches, "train")
        if trainer.num_training_batches == 0:
            return
        vci = trainer.val_check_interval
        if isinstance(vci, int) and not isinstance(vci, bool):
            if vci > trainer.num_training_batches and trainer.check_val_every_n_epoch is not None \
                    and trainer.limit_val_batches > 0:
                raise ValueError(
                    f" `val_check_interval` ({vci}) must be less than or equal to the number of the training batches "
                    f"({trainer.num_training_batches}). If you want to disable validation set `limit_val_batches` to "
                    "0.0 instead. If you want to validate based on the total training batches, set "
                    "`check_val_every_n_epoch=None`.")
        elif length == math.inf and vci != 1.0:
            raise MisconfigurationException(
                "When using an IterableDataset for `train_dataloader`, `Trainer(val_check_interval)` must be time "
                "based, `1.0` or an int. An int k specifies checking validation every k training batches.")
        n = trainer.num_training_batches
        if trainer.loggers and n < trainer.log_every_n_steps and not trainer.fast_dev_run and trainer.is_global_zero:
            warnings.warn(
                f"The number of training batches ({n}) is smaller than the logging interval "
                f"Trainer(log_every_n_steps={trainer.log_every_n_steps}). Set a lower value for log_every_n_steps if"
                " you want to see logs for the training epoch.", UserWarning, stacklevel=2)

    @property
    def train_loader(self) -> Any:
        return self.loaders.get("train")

    def eval_prefix(self, fn: str) -> str:
        return PREFIX["validate" if fn == "fit" else fn]

    def num_batches(self, prefix: str) -> list[Union[int, float]]:
        """Batches per loader of ``prefix`` under its ``limit_*_batches`` (Lightning's ``num_*_batches``)."""
        trainer = self.trainer
        limit = getattr(trainer, f"limit_{prefix}_batches")
        if prefix == "val" and trainer.state.fn == "fit" and not trainer.enable_validation:
            return []
        return [parse_num_batches(loader_length(dl), limit, prefix) for dl in self.loader_list(prefix)]
