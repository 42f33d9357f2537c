"""The config schema both CLIs share: links between sections and the defaults they add.

The YAML has four top-level keys, the same for both frameworks: ``seed_everything``,
``trainer`` (Lightning's Trainer arguments, mirrored by ``cnn.mx.lightning.trainer.Trainer``),
``model`` (``Classifier``'s arguments) and ``data`` (``DataModuleBase``'s arguments). Image
shape and class names are linked from ``data.dataset`` into ``model`` and the seed into both,
so nothing is typed twice. Callbacks and loggers are named by class name (``ModelCheckpoint``,
``EarlyStopping``, ...), which each framework resolves to its own class. ``model`` and ``data`` may
instead name a user's class (``class_path`` and ``init_args``, ``cnn.user_classes``): the links then
go only where that class takes them.
"""

from __future__ import annotations

import os
import sys
import typing

from cnn import schema
from cnn.ckpt_path import (
    best_in_new_process,
    check_evaluated_weights,
    checkpoint_home,
    last_checkpoint,
    mark_session_start,
    resume_in_place,
)
from cnn.data.datasets import get_spec
from cnn.errors import ConfigError
from cnn.jsonargparse_internals import option_type, ordered_union, parser_actions, set_option_type
from cnn.trackers import check_trackers
from cnn.user_classes import NO_NAMED_CLASSES, NamedClasses, init_args, section_name
from cnn.weights import check_resume

# trainer.default_root_dir on both sides: the runs' folder, and where a run without a logger
# keeps its checkpoints (Lightning's ModelCheckpoint: <default_root_dir>/checkpoints).
DEFAULT_ROOT_DIR = "logs"
# data.dataset -> model argument, by DatasetSpec attribute.
DATA_TO_MODEL = (("model.in_channels", "channels"), ("model.image_size", "image_size"),
                 ("model.num_classes", "num_classes"), ("model.classes", "classes"))
# What a dataset's spec is computed from: a folder's classes come from its data_dir, its image
# shape from image_size and channels (cnn.data.datasets.get_spec).
DATA_SPEC_KEYS = ("data.dataset", "data.data_dir", "data.image_size", "data.channels")


def seed_value(seed) -> int:
    """``seed_everything`` may be ``true`` (Lightning then draws one); our data needs an int."""
    return 0 if isinstance(seed, bool) or seed is None else int(seed)


def _spec_field(field: str, *data):
    return getattr(get_spec(*data), field)


def add_shared_arguments(parser, own: NamedClasses = NO_NAMED_CLASSES) -> None:
    """Links and extra options every trainer subcommand has, on a jsonargparse parser; with a
    user's class named for ``model`` or ``data`` (``own``), only the links it can take."""
    parser.add_argument("--output", type=str | None, default=None,
                        help="predict: also write the predictions to this .csv or .json")
    spec_keys = [key.split(".", 1)[1] for key in DATA_SPEC_KEYS]
    if own.data_is_ours and all(own.data_takes(key) for key in spec_keys):
        sources = tuple(own.key("data", key) for key in spec_keys)
        for target, field in DATA_TO_MODEL:
            name = target.split(".", 1)[1]
            if own.model_takes(name):
                parser.link_arguments(sources, own.key("model", name),
                                      compute_fn=lambda *data, f=field: _spec_field(f, *data))
    for section in ("data", "model"):
        if own.data_takes("seed") if section == "data" else own.model_takes("seed"):
            parser.link_arguments("seed_everything", own.key(section, "seed"), compute_fn=seed_value)
    counts_before_fractions(parser)
    for action in parser_actions(parser):
        if action.dest == "model.net":  # its help would list every nn.Module subclass installed
            action.extra_help = lambda: ""


def dataset_name(data) -> str:
    """The name a run's data goes by in its folder (``<root>/<name>/<framework>``): our DataModule's
    ``dataset``, or the class name of a user's DataModule."""
    return str(init_args(data).get("dataset") or section_name(data) or "data")


def apply_run_defaults(config, subcommand: str, framework: str, logger_class: str,
                       checkpoint_class: str, fit_callbacks: tuple[str, ...] = (),
                       checkpoint_suffix: str = ".ckpt", own: NamedClasses = NO_NAMED_CLASSES) -> None:
    """Fill in the logger and callbacks a run gets unless its config names its own.

    TensorBoard under ``<default_root_dir>/<dataset>/<framework>/version_N`` (no logger for
    ``predict``, which logs no metrics); for ``fit``, a ModelCheckpoint keeping the best (by
    ``val/acc``; for a user's model (``own``), which may not log it, the newest, said in a ``note:``
    line) and the last checkpoint unless ``trainer.enable_checkpointing`` is false (a
    Lightning ``ModelCheckpoint`` the config names becomes ``checkpoint_class`` too), named
    ``epoch=E-step=S``, and the ``fit_callbacks``
    (class paths) not already listed. ``fit --ckpt_path`` resumes inside the run directory it
    names (``cnn.ckpt_path``: ``last`` is found where the run's logger or checkpoint callback
    put it, with any logger), so logs, checkpoints and best-model tracking continue there,
    and is refused when a model value differs from the checkpoint's (``cnn.weights.check_resume``).
    """
    check_evaluated_weights(config, subcommand)
    trainer = config.trainer
    default_logger = trainer.logger in (None, True)
    run_name = f"{dataset_name(config.data)}/{framework}"
    # where --ckpt_path last/best looks: the run's own logger and callbacks, before predict drops them
    home = checkpoint_home(config, DEFAULT_ROOT_DIR, run_name) \
        if config.get("ckpt_path") in ("last", "best") else None
    if subcommand == "predict":
        trainer.logger = False
    elif default_logger:
        trainer.logger = {"class_path": logger_class,
                          "init_args": {"save_dir": trainer.default_root_dir or DEFAULT_ROOT_DIR,
                                        "name": run_name,
                                        "default_hp_metric": False}}
    tag_framework(trainer.logger, framework)
    check_trackers(trainer.logger)  # one short look at each store, before anything is built
    callbacks = [_our_checkpoint(c, checkpoint_class) for c in trainer.callbacks or []]
    has_checkpoint = any("ModelCheckpoint" in _class_path(c) for c in callbacks)
    if subcommand == "fit" and not has_checkpoint and trainer.enable_checkpointing is not False:
        monitor = schema.VAL_ACC if own.model_is_ours else None
        if monitor is None:
            print(f"note: the default ModelCheckpoint keeps the newest and the last checkpoint: "
                  f"{own.model} may not log {schema.VAL_ACC}; to keep your best, add a "
                  "ModelCheckpoint with your metric as its monitor to trainer.callbacks", file=sys.stderr)
        callbacks.append({"class_path": checkpoint_class,
                          "init_args": {"monitor": monitor, "mode": "max",
                                        "save_last": True,
                                        "filename": "epoch={epoch}-step={step}",
                                        "auto_insert_metric_name": False}})
    if subcommand == "fit":
        listed = {_class_path(c).rsplit(".", 1)[-1] for c in callbacks}
        callbacks += [{"class_path": path} for path in fit_callbacks
                      if path.rsplit(".", 1)[-1] not in listed]
    trainer.callbacks = callbacks
    if config.get("ckpt_path") == "best":
        raise ConfigError(best_in_new_process(home))
    if config.get("ckpt_path") == "last":
        config.ckpt_path = str(last_checkpoint(home, checkpoint_suffix))
    if subcommand == "fit" and config.get("ckpt_path"):
        resume_in_place(config)
    if subcommand == "fit" and config.get("ckpt_path") and os.path.lexists(config.ckpt_path):
        # before any file of the run is written: a refused resume leaves its records as they were
        resumed = check_resume(config.ckpt_path, init_args(config.model))
        mark_session_start(trainer.logger, resumed.get("global_step") or 0)
    elif subcommand == "fit" and not config.get("ckpt_path"):
        mark_session_start(trainer.logger, None)


# Experiment trackers whose runs of both frameworks share one store: class name -> how the
# framework is added to the init argument ``tags`` (MLflow: a dict of tags; W&B: a list).
TRACKER_TAGS = {"MLFlowLogger": lambda tags, framework: {**(tags or {}), "framework": framework},
                "WandbLogger": lambda tags, framework: [*(t for t in tags or [] if t != framework), framework]}


def tag_framework(logger, framework: str) -> None:
    """Tag the runs of the experiment trackers in ``logger`` (``trainer.logger``: one class
    entry, a list of them, or a bool) with ``framework``, so one store tells torch runs from MLX
    runs. Only the built loggers get it: ``config.yaml`` keeps the config as given."""
    for entry in logger if isinstance(logger, list) else [logger]:
        name = _class_path(entry).rsplit(".", 1)[-1]
        if name not in TRACKER_TAGS:
            continue
        init_args = entry.get("init_args") if isinstance(entry, dict) else getattr(entry, "init_args", None)
        if init_args is None:
            init_args = entry["init_args"] = {}
        tags = init_args.get("tags") if isinstance(init_args, dict) else getattr(init_args, "tags", None)
        init_args["tags"] = TRACKER_TAGS[name](tags, framework)


def _our_checkpoint(callback, checkpoint_class: str):
    """A Lightning ``ModelCheckpoint`` named in the config becomes this side's, whose ``last``
    holds the newest state after every epoch whatever the metric did (same arguments)."""
    path = _class_path(callback)
    if path.startswith(("lightning.", "pytorch_lightning.", "cnn.mx.lightning.")) \
            and path.endswith(".ModelCheckpoint") \
            and path != checkpoint_class:
        callback = dict(callback) if isinstance(callback, dict) else callback.clone()
        callback["class_path"] = checkpoint_class
    return callback


def _class_path(callback) -> str:
    if isinstance(callback, dict):
        return str(callback.get("class_path", ""))
    return str(getattr(callback, "class_path", callback))


# Trainer options where an int counts batches and a float is a share of them (Lightning's rule).
# Lightning declares them Union[int, float], but Python's typing cache can hand back an equal
# Union[float, int] made earlier by another library; jsonargparse tries the members in order, so
# "--trainer.limit_val_batches 1" became 1.0, the whole set instead of one batch, and config.yaml
# wrote every count as a float.
COUNT_OR_FRACTION = ("limit_train_batches", "limit_val_batches", "limit_test_batches",
                     "limit_predict_batches", "overfit_batches", "val_check_interval")


def counts_before_fractions(parser) -> None:
    """Make the ``COUNT_OR_FRACTION`` options of ``parser`` (a jsonargparse parser holding the
    ``trainer`` section) read and write a whole number as an int, as Lightning means it."""
    for action in parser_actions(parser):
        hint = option_type(action)
        if (action.dest.removeprefix("trainer.") in COUNT_OR_FRACTION
                and typing.get_origin(hint) is typing.Union and int in hint.__args__):
            members = tuple(sorted(hint.__args__, key=lambda member: member is not int))
            # built directly: typing.Union[...] would return the cached, equal float-first one
            set_option_type(action, ordered_union(members))
