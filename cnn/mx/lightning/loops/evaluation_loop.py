"""Mirror of lightning.pytorch.loops.evaluation_loop: one validation or test epoch, and its results table.

Sanity-check validation logs nothing; evaluation ``on_step`` metrics are logged at the evaluation batch counter,
epoch metrics at the trainer's step axis.
"""

from __future__ import annotations

from typing import Any, Mapping

from cnn.mx.lightning.loops.progress import EvaluationProgress
from cnn.mx.lightning.loops.utilities import transfer_batch
from cnn.mx.lightning.trainer.call import call_evaluation_step, call_hooks, call_lightning_module_hook
from cnn.mx.lightning.trainer.connectors.data_connector import parse_num_batches
from cnn.mx.lightning.trainer.connectors.logger_connector.result import to_float


class EvaluationLoop:
    """Lightning's ``_EvaluationLoop`` for ``validate`` (inside fit, the sanity check, or alone) and ``test``.
    Owns :class:`EvaluationProgress` (``progress``); ``verbose`` prints the results table after a ``validate`` or
    ``test`` entry point."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.progress = EvaluationProgress()
        self.verbose = False

    def run(self, fn: str) -> list[dict[str, float]]:
        """Lightning's ``_EvaluationLoop.run`` for ``fn`` in ("validate", "test"); returns ``[logged epoch
        metrics]`` (``[]`` when there is no batch to run)."""
        trainer, progress = self.trainer, self.progress
        lc, name, key = trainer.logger_connector, "validation" if fn == "validate" else "test", fn
        loader = trainer.data_connector.eval_loader_for(fn)
        if fn == "validate" and trainer.state.fn == "fit":
            n = trainer.num_val_batches
        else:
            n = parse_num_batches(len(loader), trainer.limit_val_batches if fn == "validate" else
                                  trainer.limit_test_batches, fn)
        if trainer.sanity_checking:
            n = min(n, trainer.num_sanity_val_steps)
        if n == 0:
            return []
        if trainer.state.fn == "fit" and hasattr(loader, "set_epoch"):
            loader.set_epoch(trainer.current_epoch)
        if trainer.state.fn != "fit":
            progress.seen = 0
        if not trainer.sanity_checking:
            trainer.state.stage = fn
        results = lc.results[key]
        lc.active, lc.in_step, progress.ready = key, False, 0
        call_lightning_module_hook(trainer, f"on_{name}_model_eval")
        call_hooks(trainer, f"on_{name}_start")
        call_hooks(trainer, f"on_{name}_epoch_start")
        batches = iter(loader)
        for batch_idx in range(n):
            with trainer.profiler.profile(f"[_EvaluationLoop].{'val' if fn == 'validate' else fn}_next"):
                batch = next(batches)
            batch = transfer_batch(trainer, batch)
            progress.ready += 1
            results.batch, results.batch_size, lc.in_step = batch, None, True
            call_hooks(trainer, f"on_{name}_batch_start", batch, batch_idx)
            out = call_evaluation_step(trainer, f"{name}_step", batch, batch_idx)
            call_hooks(trainer, f"on_{name}_batch_end", out, batch, batch_idx)
            lc.update_views(results.metrics(True))
            results.batch = None
            if not trainer.sanity_checking:  # Lightning's _seen_batches_per_dataloader: counts across a fit's runs
                lc.log_metrics(results.metrics(True)["log"], step=progress.seen)
                progress.seen += 1
        lc.in_step = False
        call_hooks(trainer, f"on_{name}_epoch_end")
        trainer.strategy.sync_epoch_results(results)
        lc.update_views(results.metrics(False))
        logged = {} if trainer.sanity_checking else dict(results.metrics(False)["log"])
        lc.log_metrics(logged)
        logged = {k: to_float(v) for k, v in logged.items()}  # what validate/test return: Lightning's scalars
        call_hooks(trainer, f"on_{name}_end")
        results.reset()
        call_lightning_module_hook(trainer, f"on_{name}_model_train")
        lc.active = None
        if self.verbose and trainer.state.fn in ("validate", "test") and logged and trainer.is_global_zero:
            print_results(logged, fn)
        return [logged]


def print_results(metrics: Mapping[str, float], stage: str) -> None:
    """Lightning's evaluation results table (single dataloader)."""
    width = max(25, max(len(k) for k in metrics))
    bar = "─" * (width * 2 + 4)
    title = f"{'Validate' if stage == 'validate' else stage.capitalize()} metric"
    lines = [bar, f"{title:^{width}}  {'DataLoader 0':^{width}}", bar]
    lines += [f"{k:^{width}}  {v:^{width}.6g}" for k, v in sorted(metrics.items())]
    print("\n".join(lines + [bar]))
