"""Mirror of lightning.pytorch.callbacks.gradient_accumulation_scheduler: ``GradientAccumulationScheduler``."""

from __future__ import annotations

from cnn.mx.lightning.callbacks.callback import Callback


class GradientAccumulationScheduler(Callback):
    """Lightning's ``GradientAccumulationScheduler``: ``scheduling`` maps a first epoch (from 0) to the number of
    batches whose gradients are summed before each optimizer step from that epoch on (epoch 0 gets 1 unless given);
    sets ``trainer.accumulate_grad_batches`` at each ``on_train_epoch_start``. Refuses a Trainer that also sets
    ``accumulate_grad_batches``."""

    def __init__(self, scheduling: dict[int, int]) -> None:
        if not scheduling:
            raise TypeError("Empty dict cannot be interpreted correct")
        scheduling = {int(k) if isinstance(k, str) and k.isdigit() else k: v for k, v in scheduling.items()}
        if any(not isinstance(key, int) or key < 0 for key in scheduling):
            raise ValueError(f"Epoch should be an int greater than or equal to 0. Got {list(scheduling.keys())}.")
        if any(not isinstance(value, int) or value < 1 for value in scheduling.values()):
            raise ValueError(f"Accumulation factor should be an int greater than 0. Got {list(scheduling.values())}.")
        scheduling.setdefault(0, 1)
        self.scheduling = scheduling
        self.epochs = sorted(scheduling)

    def going_to_accumulate_grad_batches(self) -> bool:
        return any(v > 1 for v in self.scheduling.values())

    def get_accumulate_grad_batches(self, epoch: int) -> int:
        return next((self.scheduling[e] for e in reversed(self.epochs) if epoch >= e), 1)

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.accumulate_grad_batches != 1:
            raise ValueError("You have set `accumulate_grad_batches` and are using the `GradientAccumulationScheduler`"
                             " callback. Either remove `accumulate_grad_batches` from the Trainer or remove the "
                             "callback.")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        trainer.accumulate_grad_batches = self.get_accumulate_grad_batches(trainer.current_epoch)
