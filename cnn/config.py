"""The config schema both CLIs share: links between sections and the defaults they add.

The YAML has four top-level keys, the same for both frameworks: ``seed_everything``,
``trainer`` (Lightning's Trainer arguments, mirrored by ``cnn.mx.trainer.Trainer``),
``model`` (``Classifier``'s arguments) and ``data`` (``DataModuleBase``'s arguments). Image
shape and class names are linked from ``data.dataset`` into ``model`` and the seed into both,
so nothing is typed twice. Callbacks and loggers are named by class name (``ModelCheckpoint``,
``EarlyStopping``, ...), which each framework resolves to its own class.
"""

from __future__ import annotations

from cnn import schema
from cnn.data.datasets import get_spec

# data.dataset -> model argument, by DatasetSpec attribute.
DATA_TO_MODEL = (("model.in_channels", "channels"), ("model.image_size", "image_size"),
                 ("model.num_classes", "num_classes"), ("model.classes", "classes"))


def seed_value(seed) -> int:
    """``seed_everything`` may be ``true`` (Lightning then draws one); our data needs an int."""
    return 0 if isinstance(seed, bool) or seed is None else int(seed)


def _spec_field(dataset: str, field: str):
    return getattr(get_spec(dataset), field)


def add_shared_arguments(parser) -> None:
    """Links and extra options every trainer subcommand has, on a jsonargparse parser."""
    parser.add_argument("--output", type=str | None, default=None,
                        help="predict: also write the predictions to this .csv or .json")
    for target, field in DATA_TO_MODEL:
        parser.link_arguments("data.dataset", target,
                              compute_fn=lambda name, f=field: _spec_field(name, f))
    parser.link_arguments("seed_everything", "data.seed", compute_fn=seed_value)
    parser.link_arguments("seed_everything", "model.seed", compute_fn=seed_value)


def apply_run_defaults(config, subcommand: str, framework: str, logger_class: str,
                       checkpoint_class: str) -> None:
    """Fill in the logger and checkpointing a run gets unless its config names its own.

    TensorBoard under ``<default_root_dir>/<dataset>/<framework>/version_N`` (no logger for
    ``predict``, which logs no metrics); for ``fit``, a ModelCheckpoint keeping the best (by
    ``val/acc``) and the last checkpoint, named ``epoch=E-step=S``.
    """
    trainer = config.trainer
    if subcommand == "predict":
        trainer.logger = False
    elif trainer.logger in (None, True):
        trainer.logger = {"class_path": logger_class,
                          "init_args": {"save_dir": trainer.default_root_dir or "logs",
                                        "name": f"{config.data.dataset}/{framework}",
                                        "default_hp_metric": False}}
    callbacks = list(trainer.callbacks or [])
    has_checkpoint = any("ModelCheckpoint" in str(getattr(c, "class_path", c)) for c in callbacks)
    if subcommand == "fit" and not has_checkpoint:
        callbacks.append({"class_path": checkpoint_class,
                          "init_args": {"monitor": schema.VAL_ACC, "mode": "max",
                                        "save_last": True,
                                        "filename": "epoch={epoch}-step={step}",
                                        "auto_insert_metric_name": False}})
    trainer.callbacks = callbacks
