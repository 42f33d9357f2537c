"""LightningCLI for the torch port: the YAML's trainer/model/data sections, wired."""

from __future__ import annotations

import logging
import os
import signal
import warnings

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cnn.config import add_shared_arguments, apply_run_defaults
from cnn.data.datasets import get_spec
from cnn.errors import NonFiniteGradientError, TrainingInterrupted
from cnn.predictions import report_predictions
from cnn.pt.callbacks import FaultGuard
from cnn.pt.datamodule import DataModule
from cnn.pt.module import Classifier

FRAMEWORK = "torch"
# Checkpoints are read with weights_only=True (and from .safetensors) and written atomically.
SAFE_CHECKPOINT_IO = "cnn.pt.checkpoint.SafeCheckpointIO"
# What the MLX trainer does natively: stop on a NaN loss, checkpoint on SIGINT/SIGTERM, resume
# with the random state of the interrupted run.
FIT_CALLBACKS = ("cnn.pt.callbacks.FaultGuard", "cnn.pt.callbacks.ResumeState")


def quiet_lightning() -> None:
    """Silence Lightning's tips and per-run banners; warnings and errors still show."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda",
                 "lightning.pytorch.trainer.connectors.signal_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # overfit_batches: Lightning can only swap a torch DataLoader's sampler; our DataModule
    # turns its own shuffling off (DataModuleBase.overfitting), so this note would mislead.
    warnings.filterwarnings("ignore", message=".*requested to overfit but enabled.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    # cnn.cli hands LightningCLI the arguments left after taking out --framework.
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")


def anomaly_error(error: RuntimeError) -> NonFiniteGradientError | None:
    """``detect_anomaly``'s stop (autograd found NaN in a backward function) as the one-line
    error the MLX side raises for a non-finite gradient; ``None`` for any other error."""
    first = (str(error).strip().splitlines() or [""])[0]
    if "returned nan values" not in first:
        return None
    return NonFiniteGradientError(f"detect_anomaly: {first.rstrip('.')}; stopped without "
                                  "writing a checkpoint")


class CLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` over ``Classifier`` and ``DataModule``.

    Links the data's image shape and class names into the model and ``seed_everything`` into
    both, so nothing is typed twice. Unless the config names its own, logs to
    ``<default_root_dir>/<dataset>/torch/version_N`` with TensorBoard and keeps the best
    (by ``val/acc``) and the last checkpoint; ``fit`` also gets ``FaultGuard`` and
    ``ResumeState`` (``cnn.pt.callbacks``) and, resuming, continues in the run directory of
    its checkpoint. ``fit`` ends with a test of the best checkpoint. A SIGINT/SIGTERM that
    stopped ``fit`` leaves as ``TrainingInterrupted`` (exit 128 + signum).
    """

    def __init__(self, args=None, **kwargs):
        quiet_lightning()
        try:
            self._build_and_run(args, **kwargs)
        except (TrainingInterrupted, SIGTERMException) as stop:  # the latter: Lightning's own
            guard = next((c for c in self.trainer.callbacks if isinstance(c, FaultGuard)), None)
            signum = getattr(stop, "signum", None) or getattr(guard, "signum", None) \
                or signal.SIGTERM
            last = getattr(self.trainer.checkpoint_callback, "last_model_path", "")
            raise TrainingInterrupted(signum, last if last and os.path.isfile(last) else None) \
                from None
        except RuntimeError as error:
            anomaly = anomaly_error(error)
            if anomaly is None:
                raise
            raise anomaly from None
        except SystemExit as stop:
            # Lightning turns a Ctrl-C before training starts into a silent exit(1).
            if isinstance(stop.__context__, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            raise

    def _build_and_run(self, args, **kwargs) -> None:
        super().__init__(Classifier, DataModule, args=args, subclass_mode_model=False,
                         subclass_mode_data=False, auto_configure_optimizers=False,
                         save_config_kwargs={"overwrite": True},
                         trainer_defaults={"default_root_dir": "logs",
                                           "plugins": [{"class_path": SAFE_CHECKPOINT_IO}]},
                         # raise instead of printing usage: cnn.cli turns it into one line
                         parser_kwargs={"exit_on_error": False, **{
                             name: {"exit_on_error": False}
                             for name in ("fit", "validate", "test", "predict")}},
                         **kwargs)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI would torch.load the checkpoint (no .safetensors, tracebacks on bad files)
        # and let its hparams override the config; the config decides, on_load_checkpoint checks.
        pass

    def add_arguments_to_parser(self, parser) -> None:
        add_shared_arguments(parser)

    def before_instantiate_classes(self) -> None:
        apply_run_defaults(self.config[self.subcommand], self.subcommand, FRAMEWORK,
                           "lightning.pytorch.loggers.TensorBoardLogger",
                           "lightning.pytorch.callbacks.ModelCheckpoint",
                           fit_callbacks=FIT_CALLBACKS, checkpoint_suffix=".ckpt")

    def after_fit(self) -> None:
        best = self.trainer.checkpoint_callback.best_model_path if isinstance(
            self.trainer.checkpoint_callback, ModelCheckpoint) else ""
        if self.trainer.interrupted or not best:
            return
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best)

    def after_predict(self) -> None:
        report_predictions(self.datamodule, self.trainer.predict_loop.predictions,
                           self.model.hparams.classes or get_spec(self.datamodule.dataset).classes,
                           self.config.predict.output)
