"""Mirror of lightning.pytorch.loops.prediction_loop: ``predict_step`` over the predict loader."""

from __future__ import annotations

import math
from itertools import islice
from typing import Any, Optional

from cnn.mx.lightning.loops.evaluation_loop import verify_dataloader_idx_requirement
from cnn.mx.lightning.loops.utilities import ModuleMode, set_sampler_epoch, transfer_batch
from cnn.mx.lightning.trainer.call import call_evaluation_step, call_hooks, call_lightning_module_hook


class PredictionLoop:
    """Lightning's ``_PredictionLoop``: the module in eval mode, ``predict_step`` per batch between its batch hooks;
    ``return_predictions`` keeps the outputs (the entry point's return value)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.return_predictions = True
        self.predictions: list = []  # the last run's outputs (Lightning's), empty without return_predictions

    def run(self) -> Optional[list]:
        """Each predict loader in turn (the step and batch hooks get ``dataloader_idx`` when there are several); the
        outputs, a list per loader when there are several (Lightning's return value)."""
        trainer = self.trainer
        model = trainer.lightning_module
        loaders = trainer.data_connector.loader_list("predict")
        counts = trainer.num_predict_batches
        several = len(loaders) > 1
        verify_dataloader_idx_requirement(model, "predict", "predict", several)
        trainer.state.stage = "predict"
        module_mode = ModuleMode()
        module_mode.capture(model)
        call_lightning_module_hook(trainer, "on_predict_model_eval")
        call_hooks(trainer, "on_predict_start")
        call_hooks(trainer, "on_predict_epoch_start")
        predictions: list[list] = []
        for dl_idx, (loader, n) in enumerate(zip(loaders, counts)):
            set_sampler_epoch(loader, trainer.current_epoch)
            extra = (dl_idx,) if several else ()
            outputs: list = []
            for batch_idx, batch in enumerate(islice(iter(loader), None if n == math.inf else n)):
                batch = transfer_batch(trainer, batch, dl_idx)
                call_hooks(trainer, "on_predict_batch_start", batch, batch_idx, *extra)
                out = call_evaluation_step(trainer, "predict_step", batch, batch_idx, dl_idx if several else None)
                call_hooks(trainer, "on_predict_batch_end", out, batch, batch_idx, *extra)
                if self.return_predictions:
                    outputs.append(out)
            predictions.append(outputs)
        call_hooks(trainer, "on_predict_epoch_end")
        call_hooks(trainer, "on_predict_end")
        module_mode.restore(model)  # Lightning's _on_predict_model_train (no hook: Lightning calls none)
        if not self.return_predictions:
            self.predictions = []
            return None
        self.predictions = predictions if several else (predictions[0] if predictions else [])
        return self.predictions
