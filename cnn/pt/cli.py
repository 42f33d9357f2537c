"""LightningCLI for the torch port: the YAML's trainer/model/data sections, wired."""

from __future__ import annotations

import logging
import warnings

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from cnn import schema
from cnn.data.datasets import get_spec
from cnn.pt.datamodule import DataModule
from cnn.pt.module import Classifier
from cnn.predictions import report_predictions

FRAMEWORK = "torch"


def seed_value(seed) -> int:
    """``seed_everything`` may be ``true`` (Lightning then draws one); our data needs an int."""
    return 0 if isinstance(seed, bool) or seed is None else int(seed)


def quiet_lightning() -> None:
    """Silence Lightning's tips and per-run banners; warnings and errors still show."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")


class CLI(LightningCLI):
    """``fit``/``validate``/``test``/``predict`` over ``Classifier`` and ``DataModule``.

    Links the data's image shape and class names into the model and ``seed_everything`` into
    both, so nothing is typed twice. Unless the config names its own, logs to
    ``<default_root_dir>/<dataset>/torch/version_N`` with TensorBoard and keeps the best
    (by ``val/acc``) and the last checkpoint. ``fit`` ends with a test of the best checkpoint.
    """

    def __init__(self, args=None, **kwargs):
        quiet_lightning()
        super().__init__(Classifier, DataModule, args=args, subclass_mode_model=False,
                         subclass_mode_data=False, auto_configure_optimizers=False,
                         save_config_kwargs={"overwrite": True},
                         trainer_defaults={"default_root_dir": "logs"}, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--output", type=str | None, default=None,
                            help="predict: also write the predictions to this .csv or .json")
        for target, field in (("model.in_channels", "channels"),
                              ("model.image_size", "image_size"),
                              ("model.num_classes", "num_classes"),
                              ("model.classes", "classes")):
            parser.link_arguments("data.dataset", target,
                                  compute_fn=lambda name, f=field: getattr(get_spec(name), f))
        parser.link_arguments("seed_everything", "data.seed", compute_fn=seed_value)
        parser.link_arguments("seed_everything", "model.seed", compute_fn=seed_value)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        if trainer.logger in (None, True):
            trainer.logger = {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {"save_dir": trainer.default_root_dir or "logs",
                              "name": f"{config.data.dataset}/{FRAMEWORK}",
                              "default_hp_metric": False}}
        callbacks = trainer.callbacks or []
        if not any("ModelCheckpoint" in str(getattr(c, "class_path", c)) for c in callbacks):
            callbacks.append({"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                              "init_args": {"monitor": schema.VAL_ACC, "mode": "max",
                                            "save_last": True,
                                            "filename": "epoch={epoch}-step={step}",
                                            "auto_insert_metric_name": False}})
        trainer.callbacks = callbacks

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
