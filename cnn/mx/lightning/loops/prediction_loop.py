"""Mirror of lightning.pytorch.loops.prediction_loop: ``predict_step`` over the predict loader."""

from __future__ import annotations

from itertools import islice
from typing import Any, Optional

from cnn.mx.lightning.loops.utilities import transfer_batch
from cnn.mx.lightning.trainer.call import call_evaluation_step, call_hooks, call_lightning_module_hook


class PredictionLoop:
    """Lightning's ``_PredictionLoop``: the module in eval mode, ``predict_step`` per batch between its batch hooks;
    ``return_predictions`` keeps the outputs (the entry point's return value)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.return_predictions = True

    def run(self) -> Optional[list]:
        trainer = self.trainer
        model = trainer.lightning_module
        loader = trainer.data_connector.eval_loader_for("predict")
        n = trainer.num_predict_batches
        trainer.state.stage = "predict"
        was_training = model.training
        call_lightning_module_hook(trainer, "on_predict_model_eval")
        call_hooks(trainer, "on_predict_start")
        call_hooks(trainer, "on_predict_epoch_start")
        predictions = []
        for batch_idx, batch in enumerate(islice(iter(loader), n)):
            batch = transfer_batch(trainer, batch)
            call_hooks(trainer, "on_predict_batch_start", batch, batch_idx)
            out = call_evaluation_step(trainer, "predict_step", batch, batch_idx)
            call_hooks(trainer, "on_predict_batch_end", out, batch, batch_idx)
            if self.return_predictions:
                predictions.append(out)
        call_hooks(trainer, "on_predict_epoch_end")
        call_hooks(trainer, "on_predict_end")
        model.train(was_training)
        return predictions if self.return_predictions else None
