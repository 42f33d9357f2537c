"""What the trainer subcommands do around the Trainer's own call, written once for both sides.

``TRAINER_COMMANDS``: the subcommands of either framework's CLI (LightningCLI's four).
``finish_fit``: how ``fit`` ends on both sides. (How ``predict`` ends:
``cnn.predictions``; how ``test`` ends: ``cnn.metrics.report_test_epoch``.) Imports nothing, so
that ``cnn.cli`` stays quick to load.
"""

from __future__ import annotations

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")


def finish_fit(trainer, model, datamodule) -> bool:
    """After ``fit``: ``trainer.test`` of its checkpoint callback's best checkpoint; nothing when
    the run was interrupted or has no best checkpoint (no ``ModelCheckpoint``, none saved).
    Whether the test ran."""
    best = getattr(trainer.checkpoint_callback, "best_model_path", "")
    if not best or trainer.interrupted:
        return False
    trainer.test(model, datamodule=datamodule, ckpt_path=best)
    return True
