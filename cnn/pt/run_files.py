"""The torch run's own files: its ``version_N`` directory and its ``last`` checkpoint.

``TensorBoardLogger`` is Lightning's, except that a new version directory is claimed with
``cnn.runs.claim_version`` (``os.mkdir``) on rank zero, so two runs started together never
share one. ``ModelCheckpoint`` is Lightning's, except that ``save_last`` writes ``last`` at every
epoch's end and every validation, whether or not the monitored metric improved: Lightning
refreshes it only together with a top-k checkpoint, so a crash after epochs that did not improve
would resume from an older state; and a moved or copied run folder, resumed, rewrites its own
``last`` (Lightning forgets the paths of a changed folder and writes ``last-v1``). The MLX
mirrors (``cnn.mx.lightning``) behave the same.
"""

from __future__ import annotations

from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger

from cnn.pt.lightning_internals import chosen_version, save_last_checkpoint, saves_on_train_epoch_end
from cnn.runs import claim_version, relocated_state, renew_last


class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning's ``TensorBoardLogger``; a new ``version_N`` is taken by ``os.mkdir`` on rank
    zero (other ranks keep Lightning's listing: they never create the directory)."""

    def _get_next_version(self) -> int:  # a Lightning internal: cnn.pt.lightning_internals
        if rank_zero_only.rank != 0:
            return super()._get_next_version()
        return claim_version(self.root_dir)

    @property
    def chosen_version(self) -> int | str | None:
        """The version once one is chosen, None before (asking ``version`` would choose one)."""
        return chosen_version(self)


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint``; with ``save_last``, ``last`` also holds the newest state
    after every epoch and validation that wrote no top-k checkpoint (and is the only file a stop
    by an exception or a signal writes), and a run folder that was
    moved or copied is resumed as in place (``cnn.runs.relocated_state``): ``last`` is rewritten,
    not left stale beside a new ``last-v1``."""

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(relocated_state(state_dict, self.dirpath))

    def on_fit_start(self, trainer, pl_module) -> None:
        super().on_fit_start(trainer, pl_module)
        renew_last(self, trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # With save_last, a stop's state goes to `last` alone, as on MLX: Lightning also writes it
        # under a top-k name (epoch=E-step=S) that no metric ranked and nothing ever removes.
        if self.save_last is True and self.save_on_exception:
            save_last_checkpoint(self, trainer)
            return
        super().on_exception(trainer, pl_module, exception)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if saves_on_train_epoch_end(self, trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not saves_on_train_epoch_end(self, trainer):
            self._refresh_last(trainer)

    def _refresh_last(self, trainer) -> None:
        # Skipped when this step was already saved (then `last` was written with it).
        # ``save_last="link"`` stays Lightning's: a link can only point at a top-k file.
        if self.save_last is True:
            save_last_checkpoint(self, trainer)
