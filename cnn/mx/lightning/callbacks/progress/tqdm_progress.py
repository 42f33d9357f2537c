"""Mirror of lightning.pytorch.callbacks.progress.tqdm_progress: ``TQDMProgressBar``."""

from __future__ import annotations

import sys
from typing import Any

from cnn.mx.lightning.callbacks.callback import Callback


class TQDMProgressBar(Callback):
    """Lightning-like tqdm bars: one per training epoch (train + val batches, postfix = ``prog_bar`` metrics and
    ``v_num``), plus transient sanity-check / validation bars and test / predict bars."""

    def __init__(self, refresh_rate: int = 1, leave: bool = False) -> None:
        self.refresh_rate, self.leave = refresh_rate, leave
        self._train = self._eval = None
        self._trainer: Any = None

    def _bar(self, desc: str, total: Any, leave: bool, position: int = 0):
        from tqdm.auto import tqdm

        return tqdm(desc=desc, total=total, leave=leave, position=position, dynamic_ncols=True, file=sys.stdout,
                    smoothing=0)

    @property
    def trainer(self) -> Any:
        """The trainer this bar was set up with (Lightning's ``ProgressBar.trainer``)."""
        if self._trainer is None:
            raise TypeError(f"The `{self.__class__.__name__}._trainer` reference has not been set yet.")
        return self._trainer

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        """Lightning's ``ProgressBar.get_metrics``: ``v_num`` (the first logger's version) and the
        ``prog_bar`` metrics, what the bar shows; a subclass may change it."""
        out: dict[str, Any] = {}
        if trainer.loggers and trainer.loggers[0].version is not None:
            v = trainer.loggers[0].version
            out["v_num"] = v[-4:] if isinstance(v, str) else v
        out.update(trainer.progress_bar_metrics)
        return out

    def _metrics(self, trainer) -> dict[str, Any]:
        return {k: f"{v:.3g}" if isinstance(v, float) else v
                for k, v in self.get_metrics(trainer, trainer.lightning_module).items()}

    def _step(self, bar, n: int, trainer=None) -> None:
        if bar is not None and (n % self.refresh_rate == 0 or n == bar.total):
            bar.n = n
            if trainer is not None:
                bar.set_postfix(self._metrics(trainer), refresh=False)
            bar.refresh()

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._eval = self._bar("Sanity Checking", None, False)

    def on_sanity_check_end(self, trainer, pl_module) -> None:
        if self._eval is not None:
            self._eval.close()
            self._eval = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._train is not None:
            self._train.close()
        # Lightning 2.x counts training batches only; validation has its own bar
        self._train = self._bar(f"Epoch {trainer.current_epoch}", trainer.num_training_batches, True)
        self._train.n = trainer.fit_loop.epoch_loop.batch_progress.batch_in_epoch

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._step(self._train, batch_idx + 1, trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._train is not None:
            self._train.set_postfix(self._metrics(trainer))

    def on_train_end(self, trainer, pl_module) -> None:
        if self._train is not None:
            self._train.close()
            self._train = None

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._eval = self._bar("Validation", trainer.num_val_batches, self.leave and trainer.state.fn != "fit",
                                   position=1 if self._train is not None else 0)

    def on_validation_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        self._step(self._eval, batch_idx + 1)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._eval is not None and not trainer.sanity_checking:
            self._eval.close()
            self._eval = None
        if self._train is not None:
            self._train.set_postfix(self._metrics(trainer))

    def on_test_start(self, trainer, pl_module) -> None:
        self._eval = self._bar("Testing", trainer.num_test_batches, True)

    def on_test_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        self._step(self._eval, batch_idx + 1)

    def on_test_end(self, trainer, pl_module) -> None:
        if self._eval is not None:
            self._eval.close()
            self._eval = None

    def on_predict_start(self, trainer, pl_module) -> None:
        self._eval = self._bar("Predicting", trainer.num_predict_batches, True)

    def on_predict_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                             dataloader_idx: int = 0) -> None:
        self._step(self._eval, batch_idx + 1)

    def on_predict_end(self, trainer, pl_module) -> None:
        self.on_test_end(trainer, pl_module)
