"""Mirror of lightning.pytorch.loops.evaluation_loop: one validation or test epoch, and its results table.

Sanity-check validation logs nothing; evaluation ``on_step`` metrics are logged at the evaluation batch counter,
epoch metrics at the trainer's step axis.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Optional, Union

from cnn.mx.lightning.loops.progress import EvaluationProgress
from cnn.mx.lightning.loops.utilities import set_sampler_epoch, transfer_batch
from cnn.mx.lightning.trainer.call import call_evaluation_step, call_hooks, call_lightning_module_hook
from cnn.mx.lightning.trainer.connectors.logger_connector.result import to_float
from cnn.mx.lightning.utilities.model_helpers import is_overridden


class EvaluationLoop:
    """Lightning's ``_EvaluationLoop`` for ``validate`` (inside fit, the sanity check, or alone) and ``test``.
    Owns :class:`EvaluationProgress` (``progress``); ``verbose`` prints the results table after a ``validate`` or
    ``test`` entry point."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.progress = EvaluationProgress()
        self.verbose = False
        self.seen_per_dataloader: dict[int, int] = {}  # Lightning's _seen_batches_per_dataloader

    def run(self, fn: str) -> list[dict[str, float]]:
        """Lightning's ``_EvaluationLoop.run`` for ``fn`` in ("validate", "test"): each loader in turn (the steps and
        batch hooks get ``dataloader_idx`` when there are several); returns one dict of logged epoch metrics per
        loader (``[]`` when there is no batch to run)."""
        trainer, progress = self.trainer, self.progress
        lc, name, key = trainer.logger_connector, "validation" if fn == "validate" else "test", fn
        prefix = "val" if fn == "validate" else "test"
        if trainer.state.fn != "fit" and not is_overridden(f"{name}_step", trainer.lightning_module):
            return []
        if getattr(trainer, f"limit_{prefix}_batches") == 0:  # Lightning's setup_data: no loader asked for
            return []
        loaders = trainer.data_connector.loader_list(prefix)
        counts = list(getattr(trainer, f"num_{prefix}_batches"))
        if trainer.sanity_checking:
            counts = [min(n, trainer.num_sanity_val_steps) for n in counts]
        if not any(counts):
            return []
        several = len(loaders) > 1
        verify_dataloader_idx_requirement(trainer.lightning_module, name, prefix, several)
        for loader in loaders:  # some users want validation shuffling based on the training progress
            set_sampler_epoch(loader, trainer.current_epoch)
        if trainer.state.fn != "fit":
            progress.seen, self.seen_per_dataloader = 0, {}
        if not trainer.sanity_checking:
            trainer.state.stage = fn
        results = lc.results[key]
        lc.active, lc.in_step, progress.ready = key, False, 0
        call_lightning_module_hook(trainer, f"on_{name}_model_eval")
        call_hooks(trainer, f"on_{name}_start")
        call_hooks(trainer, f"on_{name}_epoch_start")
        outputs = []
        for dl_idx, (loader, n) in enumerate(zip(loaders, counts)):
            results.dataloader_idx = dl_idx if several else None
            if n:
                self.run_loader(fn, loader, n, dl_idx if several else None)
            outputs.append(self.loader_metrics(results))
        results.dataloader_idx = None
        lc.in_step = False
        call_hooks(trainer, f"on_{name}_epoch_end")
        trainer.strategy.sync_epoch_results(results)
        epoch_end = self.loader_metrics(results)
        for logged in outputs:
            logged.update(epoch_end)
        everything = {k: v for logged in outputs for k, v in logged.items()}
        lc.log_metrics(everything)
        call_hooks(trainer, f"on_{name}_end")
        results.reset()
        call_lightning_module_hook(trainer, f"on_{name}_model_train")
        lc.active = None
        outputs = [{k: to_float(v) for k, v in logged.items()} for logged in outputs]  # Lightning returns floats
        if self.verbose and trainer.state.fn in ("validate", "test") and everything and trainer.is_global_zero:
            print_results(outputs, fn)
        return outputs

    def run_loader(self, fn: str, loader: Any, n: Union[int, float], dl_idx: Optional[int]) -> None:
        """The first ``n`` batches of one loader (all of it when ``n`` is ``inf``)."""
        trainer, progress = self.trainer, self.progress
        lc, name = trainer.logger_connector, "validation" if fn == "validate" else "test"
        results = lc.results[fn]
        extra = () if dl_idx is None else (dl_idx,)
        batches = iter(loader)
        batch_idx = 0
        while batch_idx < n:
            with trainer.profiler.profile(f"[_EvaluationLoop].{'val' if fn == 'validate' else fn}_next"):
                try:
                    batch = next(batches)
                except StopIteration:
                    break
            batch = transfer_batch(trainer, batch, dl_idx or 0)
            progress.ready += 1
            results.batch, results.batch_size, lc.in_step = batch, None, True
            call_hooks(trainer, f"on_{name}_batch_start", batch, batch_idx, *extra)
            out = call_evaluation_step(trainer, f"{name}_step", batch, batch_idx, dl_idx)
            call_hooks(trainer, f"on_{name}_batch_end", out, batch, batch_idx, *extra)
            lc.update_views(results.metrics(True))
            results.batch = None
            if not trainer.sanity_checking:  # Lightning's _seen_batches_per_dataloader: counts across a fit's runs
                seen = self.seen_per_dataloader.get(dl_idx or 0, 0)
                lc.log_metrics(results.metrics(True)["log"], step=seen)
                self.seen_per_dataloader[dl_idx or 0] = seen + 1
                progress.seen += 1
            batch_idx += 1

    def loader_metrics(self, results: Any) -> dict[str, float]:
        """Lightning's ``update_eval_epoch_metrics`` for the results of the current ``dataloader_idx``: the views
        updated, the logged epoch metrics returned (none in the sanity check)."""
        trainer = self.trainer
        if trainer.sanity_checking:
            return {}
        metrics = results.metrics(False)
        trainer.logger_connector.update_views(metrics)
        return dict(metrics["log"])


def verify_dataloader_idx_requirement(model: Any, name: str, prefix: str, several: bool) -> None:
    """Lightning's ``_verify_dataloader_idx_requirement``: with several loaders the step and batch hooks take
    ``dataloader_idx``; with one, they may only take it with a default."""
    for hook in (f"{name}_step", f"on_{name}_batch_start", f"on_{name}_batch_end"):
        fn = getattr(model, hook, None)
        if not callable(fn):
            continue
        params = inspect.signature(fn).parameters
        present = "dataloader_idx" in params or any(p.kind is p.VAR_POSITIONAL for p in params.values())
        if not several:
            if "dataloader_idx" in params and params["dataloader_idx"].default is inspect.Parameter.empty:
                raise RuntimeError(
                    f"You provided only a single `{prefix}_dataloader`, but have included `dataloader_idx` in "
                    f"`{type(model).__name__}.{hook}()`. Either remove the argument or give it a default value i.e. "
                    "`dataloader_idx=0`.")
        elif not present:
            raise RuntimeError(
                f"You provided multiple `{prefix}_dataloader`, but no `dataloader_idx` argument in "
                f"`{type(model).__name__}.{hook}()`. Try adding `dataloader_idx=0` to its signature.")


def print_results(results: list[Mapping[str, float]], stage: str) -> None:
    """Lightning's evaluation results table: one column per loader, the ``/dataloader_idx_N`` suffixes removed."""
    results = [{k.split("/dataloader_idx_")[0]: v for k, v in r.items()} for r in results]
    names = sorted({k for r in results for k in r})
    if not names:
        return
    width = max(25, max(len(k) for k in names))
    bar = "─" * (width * (len(results) + 1) + 2 * len(results) + 2)
    title = f"{'Validate' if stage == 'validate' else stage.capitalize()} metric"
    lines = [bar, "  ".join([f"{title:^{width}}"] + [f"{f'DataLoader {i}':^{width}}" for i in range(len(results))]),
             bar]
    for k in names:
        cells = [f"{r[k]:^{width}.6g}" if k in r else " " * width for r in results]
        lines.append("  ".join([f"{k:^{width}}"] + cells))
    print("\n".join(lines + [bar]))
