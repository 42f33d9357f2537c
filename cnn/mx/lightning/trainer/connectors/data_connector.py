"""Mirror of lightning.pytorch.trainer.connectors.data_connector: where each entry point's batches come from, and
how many of them run."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from cnn.mx.lightning.core.datamodule import loader_hook
from cnn.mx.lightning.trainer.call import call_lightning_module_hook


def parse_num_batches(length: int, limit: Union[int, float], what: str) -> int:
    """Lightning's ``_parse_num_batches`` for sized loaders: ``limit`` batches (an int) or that fraction (a float) of
    ``length``; a whole float above 1 (a YAML's ``3.0``) is a count, as in Lightning's ``_determine_batch_limits``."""
    if isinstance(limit, float) and limit > 1.0 and limit.is_integer():
        limit = int(limit)
    if length == 0:
        return 0
    n = min(length, limit) if isinstance(limit, int) else int(length * limit)
    if n == 0 and isinstance(limit, float) and limit > 0.0:
        raise ValueError(f"limit_{what}_batches={limit} * {length} < 1; increase limit_{what}_batches")
    return n


class DataConnector:
    """The loaders of a run: ``fit``'s train and validation loaders (from a datamodule or given), each made once
    on first use; the loader of ``validate``/``test``/``predict``."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.train_source: Optional[Callable[[], Any]] = None
        self.val_source: Optional[Callable[[], Any]] = None
        self.eval_source: Optional[Callable[[], Any]] = None
        self.train_loader: Any = None
        self.val_loader: Any = None
        self.eval_loader: Any = None
        self.eval_fn: Optional[str] = None

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

    def attach_fit_data(self, train_dataloaders: Any, val_dataloaders: Any, datamodule: Any, model: Any = None) -> None:
        """``fit``'s loaders: ``datamodule``'s (then ``trainer.datamodule``) or the ones given. A datamodule given
        as ``train_dataloaders`` is taken as the datamodule, as Lightning does."""
        if train_dataloaders is not None and hasattr(train_dataloaders, "train_dataloader"):
            datamodule, train_dataloaders = train_dataloaders, None
        if datamodule is not None and (train_dataloaders is not None or val_dataloaders is not None):
            raise ValueError("You cannot pass `train_dataloader` or `val_dataloaders` to `trainer.fit(datamodule=...)`")
        self.trainer.datamodule = datamodule
        if datamodule is not None:
            self.train_source = loader_hook(datamodule, "train_dataloader")
            if self.train_source is None:
                raise ValueError(f"{type(datamodule).__name__} has no `train_dataloader()`, which `fit` needs")
            self.val_source = loader_hook(datamodule, "val_dataloader")
        else:
            # Lightning's fallback: the module's own ``*_dataloader()`` where none is given
            module_train = loader_hook(model, "train_dataloader") if model is not None else None
            module_val = loader_hook(model, "val_dataloader") if model is not None else None
            if train_dataloaders is None and module_train is None:
                raise ValueError("fit() needs `train_dataloaders` or a `datamodule`")
            self.train_source = module_train if train_dataloaders is None else (lambda: train_dataloaders)
            self.val_source = module_val if val_dataloaders is None else (lambda: val_dataloaders)
        self.train_loader = self.val_loader = None

    def attach_eval_data(self, fn: str, dataloaders: Any, datamodule: Any, model: Any = None) -> None:
        """``fn``'s loader: of the ``dataloaders`` given (no datamodule then), else of ``datamodule``, else of the
        datamodule of the previous run (which stays ``trainer.datamodule``). A datamodule given as ``dataloaders``
        is taken as the datamodule, as Lightning does."""
        if dataloaders is not None and hasattr(dataloaders, "setup") and not hasattr(dataloaders, "__len__"):
            datamodule, dataloaders = dataloaders, None
        trainer = self.trainer
        trainer.datamodule = datamodule if datamodule is not None else (trainer.datamodule if dataloaders is None
                                                                        else None)
        datamodule = trainer.datamodule
        prefix = {"validate": "val"}.get(fn, fn)
        if dataloaders is not None:
            self.eval_source = lambda: dataloaders
        elif datamodule is not None:
            self.eval_source = loader_hook(datamodule, f"{prefix}_dataloader")
            if self.eval_source is None:
                raise ValueError(f"`Trainer.{fn}()` needs `{prefix}_dataloader()`, which "
                                 f"{type(datamodule).__name__} does not define")
        elif model is not None and loader_hook(model, f"{prefix}_dataloader") is not None:
            self.eval_source = loader_hook(model, f"{prefix}_dataloader")
        else:
            raise ValueError(f"`Trainer.{fn}()` needs `dataloaders` or a `datamodule`")
        self.eval_loader = None

    def setup_train_data(self) -> None:
        """Make the train loader (once) and count its batches (``trainer.num_training_batches``)."""
        if self.train_loader is None:
            self.train_loader = self.train_source()
            self.trainer.num_training_batches = parse_num_batches(len(self.train_loader),
                                                                  self.trainer.limit_train_batches, "train")

    @property
    def val_dataloaders(self) -> Any:
        if self.val_loader is None and self.val_source is not None:
            self.val_loader = self.val_source()
        return self.val_loader

    def eval_loader_for(self, fn: str) -> Any:
        """The loader ``fn`` runs over: fit's validation loader inside ``fit``, else the entry point's own."""
        if fn == "validate" and self.trainer.state.fn == "fit":
            return self.val_dataloaders
        if self.eval_loader is None or self.eval_fn != fn:
            self.eval_loader, self.eval_fn = self.eval_source(), fn
        return self.eval_loader

    def num_val_batches(self) -> int:
        """Validation batches per run: of ``validate``'s loader, or of fit's when validation is enabled."""
        trainer = self.trainer
        if trainer.state.fn == "validate":
            loader = self.eval_loader
            return parse_num_batches(len(loader), trainer.limit_val_batches, "val") if loader is not None else 0
        if not trainer.enable_validation or self.val_dataloaders is None:
            return 0
        return parse_num_batches(len(self.val_dataloaders), trainer.limit_val_batches, "val")

    def num_eval_batches(self, limit: Any, what: str) -> int:
        """Batches of the entry point's loader under ``limit`` (0 before it is made)."""
        return parse_num_batches(len(self.eval_loader), limit, what) if self.eval_loader else 0
