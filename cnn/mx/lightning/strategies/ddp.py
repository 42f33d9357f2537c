"""Mirror of lightning.pytorch.strategies.ddp: data parallel over every process ``mlx.launch`` started, through
``mx.distributed`` (a group of one when it started none).

``world_size``/``global_rank`` come from ``mx.distributed.init()``, and the DataModule shards by them
(``datamodule.trainer`` is set before its ``setup``, as in Lightning). As Lightning's DDP: ``fit`` starts every
rank from rank zero's weights, gradients are averaged over the ranks (``nn.average_gradients``, inside the
compiled step), epoch aggregates of values logged with ``sync_dist=True`` are reduced over the ranks (means
weighted by batch size), loggers write and ``ModelCheckpoint``, the progress bar and the model summary act on rank
zero only (the others share rank zero's ``version_N``, and learn its checkpoint paths when ``fit`` ends). A NaN
loss, a signal and ``should_stop`` (checked after each validation and epoch) stop every rank at the same batch.
Every method below is a collective: all ranks call it, in order; each is a no-op in a group of one.
"""

from __future__ import annotations

import signal
from typing import Any, Optional

from cnn.mx.lightning.strategies.strategy import Strategy
from cnn.mx.lightning.utilities import distributed as dist
from cnn.mx.lightning.utilities.rank_zero import RankZeroOnlyLogger

import mlx.core as mx
import mlx.nn as nn

# Lightning's reduce ops by the collective that computes them.
_REDUCE = {"sum": mx.distributed.all_sum, "max": mx.distributed.all_max, "min": mx.distributed.all_min}


class DDPStrategy(Strategy):
    """Lightning's ``DDPStrategy`` on ``mx.distributed``: one process per device, started by ``mlx.launch``."""

    strategy_name = "ddp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = dist.world()

    @property
    def world_size(self) -> int:
        return self.group.size()

    @property
    def global_rank(self) -> int:
        return self.group.rank()

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    def setup(self, trainer: Any) -> None:
        """As :meth:`Strategy.setup`, every rank starting ``fit`` from rank zero's weights (as torch's
        ``DistributedDataParallel`` does when it wraps the model)."""
        self.precision_plugin.setup(self.lightning_module)
        if trainer.state.fn == "fit":
            self.model_to_device()
            if self.world_size > 1:
                self.broadcast_parameters(self.lightning_module)
            self.setup_optimizers(trainer)

    # ------------------------------------------------------------------ Lightning's collectives
    def reduce(self, value: Any, group: Any = None, reduce_op: Optional[str] = "mean") -> Any:
        """``value`` (an ``mx.array``) summed, maxed or minimised over the ranks; ``"mean"``: the sum over
        ``world_size``."""
        group = group or self.group
        if group.size() == 1:
            return value
        if reduce_op in ("mean", "avg", None):
            return mx.distributed.all_sum(mx.array(value), group=group) / group.size()
        return _REDUCE[reduce_op](mx.array(value), group=group)

    def barrier(self, name: Optional[str] = None) -> None:
        dist.barrier(self.group)

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank zero's ``obj`` (anything JSON can carry) on every rank."""
        return dist.broadcast_object(obj, self.group)

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        """Every array of ``data`` stacked over the ranks, shape ``(world_size, *shape)``."""
        return dist.all_gather(data, group or self.group)

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        """``decision`` on every rank when it holds on all (``all``) or on any."""
        if all:
            return not dist.any_rank(not decision, self.group)
        return dist.any_rank(decision, self.group)

    def reduce_gradients(self, grads: Any) -> Any:
        """The mean gradient of all ranks' batches."""
        return nn.average_gradients(grads, group=self.group) if self.world_size > 1 else grads

    # ------------------------------------------------------------------ the trainer's collectives
    def all_sum(self, values: Any) -> list[float]:
        return dist.all_sum(values, self.group)

    def any_rank(self, flag: bool) -> bool:
        return dist.any_rank(flag, self.group)

    def lost_peer(self, error: BaseException) -> bool:
        return dist.lost_peer(error, self.group)

    def on_exception(self, exception: BaseException) -> None:
        """A rank gone: ``mlx.launch`` sends SIGTERM to the others once it sees one exit, which would end this one
        before it says why it stops; from here it ignores it (called while the signal connector's handler, which
        only records a SIGTERM, is still installed: no gap)."""
        if self.lost_peer(exception):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def broadcast_parameters(self, model: Any) -> None:
        """DDP's start: every rank from rank zero's weights."""
        model.update(dist.broadcast_tree(model.parameters(), self.group))
        mx.eval(model.parameters())

    def share_rank_zero_loggers(self) -> None:
        """Rank zero's logger versions on every rank; the other ranks' loggers become write-less views of them."""
        if self.world_size == 1:  # asking a logger its version would choose one now
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
        if self.world_size == 1:
            return
        for cb in self.trainer.checkpoint_callbacks:
            state = dist.broadcast_object(cb.state_dict(), self.group)
            if not self.trainer.is_global_zero:
                cb.load_state_dict(state)

    def sync_epoch_results(self, results: Any) -> None:
        """Lightning's ``sync_dist``: reduce over the ranks the epoch aggregates of the values logged with
        ``sync_dist=True`` (a mean as sum of value x batch size over sum of batch sizes, so weighted by samples;
        ``sum``/``max``/``min`` by that operation). In place, once per epoch, on every rank alike."""
        if self.world_size == 1:
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
        if self.world_size > 1:
            self.trainer.should_stop = dist.any_rank(self.trainer.should_stop, self.group)
