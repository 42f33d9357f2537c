"""The MLX mirror is laid out as Lightning's sources: every file names its Lightning counterpart, none is long,
the loops' progress round-trips through a checkpoint, and every class path a config could name before the layout
still imports. (No code reaching into another object's underscore members: ``test_no_private_reach.py``.)"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning.loops.progress import BatchProgress, EpochProgress, EvaluationProgress, OptimizerProgress
from cnn.mx.lightning.utilities.mlx_internals import learning_rate_schedule, remove_learning_rate_schedule

import mlx.optimizers as optim
import pytest

ROOT = Path(__file__).resolve().parents[3]
MIRROR = ROOT / "cnn" / "mx" / "lightning"
MAX_LINES = 600


@pytest.mark.parametrize("path", sorted(MIRROR.rglob("*.py")), ids=lambda p: str(p.relative_to(MIRROR)))
def test_every_mirror_file_names_its_lightning_counterpart_in_its_first_line(path):
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring, path
    assert re.search(r"\blightning\.(pytorch|fabric)\b", docstring.splitlines()[0]), docstring.splitlines()[0]


@pytest.mark.parametrize("path", sorted(MIRROR.rglob("*.py")), ids=lambda p: str(p.relative_to(MIRROR)))
def test_no_mirror_file_is_longer_than_six_hundred_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def _attributes_first_set_outside_init(tree: ast.Module) -> dict[str, list[str]]:
    """Per class of ``tree``: the ``self.<name>`` assigned in a method but neither in its ``__init__`` (or that of a
    base class in the same file), nor as a class attribute or property."""
    classes = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}

    def assigned(function: ast.FunctionDef) -> set[str]:
        names = set()
        for node in ast.walk(function):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
            for target in targets:
                for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        names.add(t.attr)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__setattr__" \
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                names.add(node.args[1].value)
        return names

    def declared(name: str) -> set[str]:
        cls = classes.get(name)
        if cls is None:
            return set()
        names = set()
        for item in cls.body:
            if isinstance(item, ast.FunctionDef) and (item.name == "__init__" or item.decorator_list):
                names |= assigned(item) if item.name == "__init__" else {item.name}
            elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                for target in item.targets if isinstance(item, ast.Assign) else [item.target]:
                    names |= {t.id for t in (target.elts if isinstance(target, ast.Tuple) else [target])
                              if isinstance(t, ast.Name)}
        for base in cls.bases:
            names |= declared(base.id) if isinstance(base, ast.Name) else set()
        return names

    late = {}
    for name, cls in classes.items():
        known = declared(name)
        names = sorted({a for item in cls.body if isinstance(item, ast.FunctionDef) and item.name != "__init__"
                        for a in assigned(item)} - known)
        if names:
            late[name] = names
    return late


def test_the_late_attribute_finder_sees_an_attribute_a_method_sets_first():
    source = ("class A:\n    def __init__(self):\n        self.a = 1\n"
              "    def run(self):\n        self.a, self.b = 2, 3\n")
    assert _attributes_first_set_outside_init(ast.parse(source)) == {"A": ["b"]}


@pytest.mark.parametrize("path", sorted(MIRROR.rglob("*.py")), ids=lambda p: str(p.relative_to(MIRROR)))
def test_every_attribute_of_a_mirror_class_is_first_set_in_its_init(path):
    assert _attributes_first_set_outside_init(ast.parse(path.read_text())) == {}


@pytest.mark.parametrize("progress", [EpochProgress(current=3),
                                      BatchProgress(batch_in_epoch=2, total_batch_idx=7, is_last_batch=True,
                                                    batches_that_stepped=7, pending_val=True, phase="batch_end"),
                                      OptimizerProgress(steps=9), EvaluationProgress(seen=4, ready=2)],
                         ids=lambda p: type(p).__name__)
def test_each_loops_progress_round_trips_through_its_state_dict(progress):
    restored = type(progress)()
    assert restored != progress
    restored.load_state_dict(progress.state_dict())
    assert restored == progress


def test_a_progress_state_without_some_fields_leaves_them_as_they_were():
    progress = BatchProgress(total_batch_idx=5)
    progress.load_state_dict({"batch_in_epoch": 3})
    assert (progress.batch_in_epoch, progress.total_batch_idx) == (3, 5)


# Class paths a config (trainer.callbacks, trainer.logger, trainer.plugins) could name before the mirror took
# Lightning's layout or a class was renamed, and where the class lives now. The first still import (the packages
# export them, an old name is kept beside a renamed class); the modules of the others are gone, and the config
# translation names their new home.
OLD_CLASS_PATHS = {
    "cnn.mx.lightning.callbacks.Callback": "cnn.mx.lightning.callbacks.callback.Callback",
    "cnn.mx.lightning.callbacks.EarlyStopping": "cnn.mx.lightning.callbacks.early_stopping.EarlyStopping",
    "cnn.mx.lightning.callbacks.LearningRateMonitor": "cnn.mx.lightning.callbacks.lr_monitor.LearningRateMonitor",
    "cnn.mx.lightning.callbacks.ModelCheckpoint": "cnn.mx.lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "cnn.mx.lightning.callbacks.ModelSummary": "cnn.mx.lightning.callbacks.model_summary.ModelSummary",
    "cnn.mx.lightning.callbacks.TQDMProgressBar": "cnn.mx.lightning.callbacks.progress.tqdm_progress.TQDMProgressBar",
    "cnn.mx.lightning.loggers.TensorBoardLogger": "cnn.mx.lightning.loggers.tensorboard.TensorBoardLogger",
    "cnn.mx.lightning.trainer.Trainer": "cnn.mx.lightning.trainer.trainer.Trainer",
}
TRANSLATED_CLASS_PATHS = {
    "cnn.mx.checkpoint.CheckpointIO": "cnn.mx.checkpoint.SafeCheckpointIO",
    "cnn.mx.lightning.pacing.Timer": "cnn.mx.lightning.callbacks.timer.Timer",
    "cnn.mx.lightning.pacing.GradientAccumulationScheduler":
        "cnn.mx.lightning.callbacks.gradient_accumulation_scheduler.GradientAccumulationScheduler",
    "cnn.mx.lightning.swa.StochasticWeightAveraging":
        "cnn.mx.lightning.callbacks.stochastic_weight_avg.StochasticWeightAveraging",
    "cnn.mx.lightning.device_stats.DeviceStatsMonitor":
        "cnn.mx.lightning.callbacks.device_stats_monitor.DeviceStatsMonitor",
    "cnn.mx.lightning.rich_progress.RichProgressBar":
        "cnn.mx.lightning.callbacks.progress.rich_progress.RichProgressBar",
    "cnn.mx.lightning.csv_logs.CSVLogger": "cnn.mx.lightning.loggers.csv_logs.CSVLogger",
    "cnn.mx.lightning.checkpoint.SafetensorsCheckpointIO":
        "cnn.mx.lightning.plugins.io.safetensors_io.SafetensorsCheckpointIO",
}


def _load(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("old", sorted(OLD_CLASS_PATHS))
def test_every_class_path_a_config_could_name_before_the_layout_still_names_the_same_class(old):
    assert _load(old) is _load(OLD_CLASS_PATHS[old])


@pytest.mark.parametrize("old", sorted(TRANSLATED_CLASS_PATHS))
def test_a_config_naming_a_class_by_a_removed_module_runs_the_same_class_on_mlx(old):
    from cnn.config_translation import translate_config

    config = {"trainer": {"callbacks": [{"class_path": old, "init_args": {}}], "logger": old, "plugins": [old]}}
    trainer = translate_config(config, "mlx", [])["trainer"]
    named = [trainer["callbacks"][0]["class_path"], trainer["logger"], trainer["plugins"][0]]
    assert all(_load(path) is _load(TRANSLATED_CLASS_PATHS[old]) for path in named)


def test_the_package_still_exports_every_name_it_exported_before_the_layout():
    import cnn.mx.lightning as L

    before = {"CSVLogger", "Callback", "DeviceStatsMonitor", "EarlyStopping", "GradientAccumulationScheduler",
              "LearningRateMonitor", "LightningModule", "ModelCheckpoint", "ModelSummary", "RichProgressBar",
              "SafetensorsCheckpointIO", "StochasticWeightAveraging", "TQDMProgressBar", "TensorBoardLogger",
              "Timer", "Trainer"}
    assert before <= set(L.__all__) and all(hasattr(L, name) for name in before)


def test_mlx_still_keeps_an_optimizers_learning_rate_schedule_where_mlx_internals_reads_it():
    """``mlx_internals`` reads ``Optimizer._schedulers``: a new MLX without it fails here, not in a run."""
    schedule = optim.step_decay(0.1, 0.5, 10)
    optimizer = optim.SGD(learning_rate=schedule)
    assert learning_rate_schedule(optimizer) is schedule
    assert learning_rate_schedule(optim.SGD(learning_rate=0.1)) is None
    remove_learning_rate_schedule(optimizer)
    assert learning_rate_schedule(optimizer) is None
