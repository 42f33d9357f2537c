"""What the trainer subcommands do around the Trainer's own call, written once for both sides.

``TRAINER_COMMANDS``: the subcommands of either framework's CLI (LightningCLI's four).
(How ``fit`` ends on both sides: ``cnn.runs.finish_fit``; how ``predict`` ends:
``cnn.predictions``; how ``test`` ends: ``cnn.metrics.report_test_epoch``.) Imports nothing, so
that ``cnn.cli`` stays quick to load.
"""

from __future__ import annotations

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")

