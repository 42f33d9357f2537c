"""Mirror of lightning.pytorch.trainer.connectors.accelerator_connector: the device, the precision and checkpoint IO
plugins, and the ranks ``mlx.launch`` started with what the DDP strategy does across them.

``world_size``/``global_rank`` come from ``mx.distributed.init()`` (a group of one unless started by
``mlx.launch``), and the DataModule shards by them (``datamodule.trainer`` is set before its ``setup``, as in
Lightning). As Lightning's DDP: ``fit`` starts every rank from rank zero's weights, gradients are averaged over the
ranks (``nn.average_gradients``, inside the compiled step), epoch aggregates of values logged with
``sync_dist=True`` are reduced over the ranks (means weighted by batch size), loggers write and ``ModelCheckpoint``,
the progress bar and the model summary act on rank zero only (the others share rank zero's ``version_N``, and learn
its checkpoint paths when ``fit`` ends). A NaN loss, a signal and ``should_stop`` (checked after each validation and
epoch) stop every rank at the same batch.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, Optional, Sequence

from cnn.mx.lightning.core.optimizer import configure_optimizers
from cnn.mx.lightning.plugins.io.safetensors_io import SafetensorsCheckpointIO
from cnn.mx.lightning.plugins.precision.precision import Precision
from cnn.mx.lightning.utilities import distributed as dist
from cnn.mx.lightning.utilities.rank_zero import RankZeroOnlyLogger, rank_zero_only

import mlx.core as mx


def select_device(accelerator: str) -> None:
    """``mx.set_default_device`` for ``Trainer(accelerator=...)``: ``"auto"`` is the GPU when MLX has one."""
    if accelerator == "cpu":
        mx.set_default_device(mx.cpu)
    elif accelerator in ("gpu", "cuda", "mps"):
        if not mx.is_available(mx.gpu):
            raise ValueError(f"Trainer(accelerator={accelerator!r}) but MLX has no GPU here")
        mx.set_default_device(mx.gpu)
    else:
        mx.set_default_device(mx.gpu if mx.is_available(mx.gpu) else mx.cpu)


def checkpoint_io_from(plugins: Any) -> Any:
    """The checkpoint IO among Lightning-style ``plugins``; the default file format when none."""
    given = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    if any(not (hasattr(p, "save_checkpoint") and hasattr(p, "load_checkpoint")) for p in given) or len(given) > 1:
        raise ValueError(f"Trainer(plugins={plugins!r}) is not supported by the MLX trainer "
                         "(supported: None or one checkpoint IO)")
    return given[0] if given else SafetensorsCheckpointIO()


class AcceleratorConnector:
    """The group of every process ``mlx.launch`` started (a group of one otherwise) and the collectives the trainer
    runs over it; each is a no-op in a group of one. Every method is a collective: all ranks call it, in order.

    Made from the ``Trainer`` flags it owns, as Lightning's: the precision plugin (``precision``), the checkpoint IO
    (``plugins``) and ``benchmark`` (``True`` prints, on rank zero, that MLX has no kernel autotuner)."""

    def __init__(self, trainer: Any, precision: Any = "32-true", plugins: Any = None,
                 benchmark: Optional[bool] = None) -> None:
        self.trainer = trainer
        self.group = dist.world()
        rank_zero_only.rank = self.group.rank()  # as Lightning's strategy sets it: loggers read it
        self.checkpoint_io = checkpoint_io_from(plugins)
        self.precision_plugin = Precision(precision)
        if benchmark and self.group.rank() == 0:
            print("note: Trainer(benchmark=True) has no effect with MLX, which has no kernel autotuner",
                  file=sys.stderr)

    def setup(self, model: Any, fn: str) -> None:
        """Lightning's ``Strategy.setup``, after the checkpoint's weights are in: the precision plugin set up
        (``64-true`` casts the weights); for ``fit``, DDP's start (every rank from rank zero's weights) and
        ``configure_optimizers`` (``trainer.optimizers``, ``trainer.lr_scheduler_configs``)."""
        trainer = self.trainer
        trainer.precision_plugin.setup(model)
        if fn == "fit":
            if self.group.size() > 1:
                self.broadcast_parameters(model)
            trainer.optimizers, trainer.lr_scheduler_configs = configure_optimizers(trainer)

    def barrier(self) -> None:
        dist.barrier(self.group)

    def lost_peer(self, error: BaseException) -> bool:
        """Whether ``error`` is a collective failing because another rank is gone (killed, crashed)."""
        return dist.lost_peer(error, self.group)

    def on_exception(self, exception: BaseException) -> None:
        """Lightning's ``strategy.on_exception``. A rank gone: ``mlx.launch`` sends SIGTERM to the others once
        it sees one exit, which would end this one before it says why it stops; from here it ignores it (called
        while the signal connector's handler, which only records a SIGTERM, is still installed: no gap)."""
        if self.lost_peer(exception):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def all_sum(self, values: Sequence[float]) -> list[float]:
        return dist.all_sum(values, self.group)

    def any_rank(self, flag: bool) -> bool:
        return dist.any_rank(flag, self.group)

    def broadcast_parameters(self, model: Any) -> None:
        """DDP's start: every rank from rank zero's weights."""
        model.update(dist.broadcast_tree(model.parameters(), self.group))
        mx.eval(model.parameters())

    def share_rank_zero_loggers(self) -> None:
        """Rank zero's logger versions on every rank; the other ranks' loggers become write-less views of them."""
        if self.group.size() == 1:  # asking a logger its version would choose one now
            return
        trainer = self.trainer
        versions = dist.broadcast_object([getattr(lg, "version", None) for lg in trainer.loggers]
                                         if trainer.is_global_zero else None, self.group)
        if trainer.is_global_zero:
            return
        if len(versions) != len(trainer.loggers):
            raise RuntimeError(f"rank {trainer.global_rank} has {len(trainer.loggers)} loggers, rank 0 {len(versions)}")
        trainer.loggers = [lg if isinstance(lg, RankZeroOnlyLogger) else RankZeroOnlyLogger(lg)
                           for lg in trainer.loggers]
        for lg, version in zip(trainer.loggers, versions):
            if version is not None and hasattr(lg.logger, "share_version"):
                lg.logger.share_version(version)

    def share_checkpoint_paths(self) -> None:
        """After ``fit``: rank zero's ``best_model_path``/``last_model_path``/top-k on every rank (for ``test``
        of the best, ``ckpt_path="best"``/``"last"``)."""
        if self.group.size() == 1:
            return
        for cb in self.trainer.checkpoint_callbacks:
            state = dist.broadcast_object(cb.state_dict(), self.group)
            if not self.trainer.is_global_zero:
                cb.load_state_dict(state)

    def sync_epoch_results(self, results: Any) -> None:
        """Lightning's ``sync_dist``: reduce over the ranks the epoch aggregates of the values logged with
        ``sync_dist=True`` (a mean as sum of value x batch size over sum of batch sizes, so weighted by samples;
        ``sum``/``max``/``min`` by that operation). In place, once per epoch, on every rank alike."""
        if self.group.size() == 1:
            return
        keys = self.trainer.logger_connector.sync_dist_keys
        metrics = [m for key, m in sorted(results.items()) if key in keys and m.meta.on_epoch and not m.has_reset]
        summed = [m for m in metrics if m.meta.reduce_fx in ("mean", "sum")]
        if summed:
            totals = dist.all_sum([x for m in summed for x in (m.value, m.cumulated_batch_size)], self.group)
            for i, m in enumerate(summed):
                m.value, m.cumulated_batch_size = totals[2 * i], totals[2 * i + 1]
        for fx, reduce in (("max", dist.all_max), ("min", dist.all_min)):
            chosen = [m for m in metrics if m.meta.reduce_fx == fx]
            if chosen:
                for m, value in zip(chosen, reduce([m.value for m in chosen], self.group)):
                    m.value = value

    def agree_should_stop(self) -> None:
        """``should_stop`` on every rank when set on one (Lightning's ``reduce_boolean_decision``)."""
        if self.group.size() > 1:
            self.trainer.should_stop = dist.any_rank(self.trainer.should_stop, self.group)
