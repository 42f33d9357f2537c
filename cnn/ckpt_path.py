"""What ``--ckpt_path`` names, on both sides: ``last`` found where the run's checkpoints went,
``best`` refused in a new process, ``untrained`` asked for by name, and a resumed ``fit``
continued in the run folder of its checkpoint, with the optimizer it was trained with.

Where a run's checkpoints go is Lightning's rule (``ModelCheckpoint``, mirrored on MLX): the
checkpoint callback's ``dirpath``; else ``<save_dir>/<name>/version_N/checkpoints`` of the first
logger (``save_dir`` defaulting to ``trainer.default_root_dir``); without a logger
``<default_root_dir>/checkpoints``. The default logger's ``save_dir``/``name`` are
``<default_root_dir>`` and ``<dataset>/<framework>`` (``cnn.config.apply_run_defaults``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from cnn.errors import ConfigError
from cnn.runs import newest_checkpoint

# ``validate``/``test``/``predict --ckpt_path untrained``: the seeded, untrained weights, asked
# for by name (without a --ckpt_path those commands refuse to run).
UNTRAINED = "untrained"
# Loggers whose run folder is named by their tracker's run (an id known only once it starts):
# a later command cannot tell where such a run kept its checkpoints.
TRACKER_LOGGERS = ("MLFlowLogger", "WandbLogger", "CometLogger", "NeptuneLogger")
VERSIONED = "version_*/checkpoints"
# Loggers a resumed fit continues in the run folder of its checkpoint (``resume_in_place``).
CONTINUED_LOGGERS = ("TensorBoardLogger",)  # the folders under a versioning logger's root


@dataclass(frozen=True)
class CheckpointHome:
    """Where a run's checkpoints are: the folders matching ``folders`` (a glob; ``""``: ``root``
    itself) under ``root``."""

    root: Path
    folders: str = ""

    def __str__(self) -> str:
        return str(self.root / self.folders.replace("version_*", "version_N")) if self.folders \
            else str(self.root)


def _get(values, key: str, default=None):
    if values is None:
        return default
    value = values.get(key, default) if hasattr(values, "get") else getattr(values, key, default)
    return default if value is None else value


def _class_name(entry) -> str:
    return str(_get(entry, "class_path", "")).rsplit(".", 1)[-1]


def first_logger(logger):
    """The logger entry whose folder ``ModelCheckpoint`` uses (the first of a list); None without one."""
    if isinstance(logger, list):
        return logger[0] if logger else None
    return None if logger is False else logger


def checkpoint_home(config, default_root: str, default_name: str) -> CheckpointHome:
    """Where the run ``config`` describes keeps its checkpoints (before the run's defaults are
    filled in: a ``trainer.logger`` of ``None``/``true`` is the default logger, ``default_name``
    under ``default_root``). ``ConfigError`` for a tracker's logger, whose folder no later
    command can know."""
    trainer = config.trainer
    root = trainer.default_root_dir or default_root
    for callback in trainer.callbacks or []:
        dirpath = _get(_get(callback, "init_args"), "dirpath")
        if "ModelCheckpoint" in _class_name(callback) and dirpath:
            return CheckpointHome(Path(dirpath))
    if trainer.logger in (None, True):
        return CheckpointHome(Path(root) / default_name, VERSIONED)
    entry = first_logger(trainer.logger)
    if entry is None:
        return CheckpointHome(Path(root) / "checkpoints")
    if _class_name(entry) in TRACKER_LOGGERS:
        raise ConfigError(f"--ckpt_path last: {_class_name(entry)} names its run folder after the "
                          "tracker's run, which this command cannot know; give the checkpoint file "
                          "(the fit's ModelCheckpoint dirpath, or its printed path)")
    args = _get(entry, "init_args")
    runs = Path(_get(args, "save_dir", root)) / str(_get(args, "name", "") or "")
    version = _get(args, "version")
    if version is None:
        return CheckpointHome(runs, VERSIONED)
    return CheckpointHome(runs / (version if isinstance(version, str) else f"version_{version}")
                          / "checkpoints")


def check_evaluated_weights(config, subcommand: str) -> None:
    """``validate``, ``test`` and ``predict`` evaluate a checkpoint: without ``--ckpt_path`` they
    would evaluate the seeded, untrained weights and report them as a result, so they refuse in
    one line (``ConfigError``) unless asked for those by name (``--ckpt_path untrained``, which
    then becomes Lightning's ``None``)."""
    if subcommand == "fit":
        return
    if config.get("ckpt_path") == UNTRAINED:
        config.ckpt_path = None
    elif not config.get("ckpt_path"):
        raise ConfigError(f"{subcommand} needs the checkpoint to evaluate: --ckpt_path FILE (or "
                          f"last: the newest of your runs); --ckpt_path {UNTRAINED} evaluates the "
                          "seeded, untrained weights")


def best_in_new_process(home: CheckpointHome) -> str:
    """The line refusing ``--ckpt_path best``: as in Lightning, ``best`` is the best checkpoint
    of a ``fit`` in the same process, and each command is a new one."""
    return (f"--ckpt_path best: only the fit that kept a best checkpoint knows which it is (fit tests it "
            f"when it ends); give its file (under {home}, beside last), or --ckpt_path last")


def last_checkpoint(home: CheckpointHome, suffix: str) -> Path:
    """What ``--ckpt_path last`` names: the newest whole checkpoint in ``home``
    (``cnn.runs.newest_checkpoint``), normally a ``last`` one; a ``note:`` line says so when it
    is not (a kill during a ``last`` write). ``ConfigError`` when there is none, before anything
    is created: neither a fit from scratch nor an evaluation of untrained weights is what
    ``last`` asked for."""
    found = newest_checkpoint(home.root, suffix, home.folders)
    if found is None:
        raise ConfigError(f"--ckpt_path last: there is no checkpoint under {home.root}; give a checkpoint "
                          "file, or train one with fit (without --ckpt_path)")
    if not found.name.startswith("last"):
        whole = any(p.name.startswith("last") and p.stat().st_size and not p.is_symlink()
                    for p in found.parent.glob(f"last*{suffix}"))
        why = f"its last{suffix} is older" if whole else f"it has no whole last{suffix}"
        print(f"note: --ckpt_path last: {found.parent}: {why}; using its newest checkpoint {found}",
              file=sys.stderr)
    return found


def resume_in_place(config) -> None:
    """Point the first logger of a resumed ``fit`` at the run directory of its checkpoint.

    Lightning (and our MLX mirror) would log a resumed run to a new ``version_N+1``, where
    ModelCheckpoint forgets its best models (it only restores them into the same directory) and
    ``last`` would no longer be the newest state. Here a checkpoint inside
    ``<save_dir>/<name>/version_N/checkpoints`` of a ``TensorBoardLogger`` (the default one or a
    user's) makes it reuse its ``version_N`` (``last`` was made a path by ``last_checkpoint``).
    A ``CSVLogger`` goes on in a new ``version_N+1`` as in Lightning, whose CSV writer deletes
    the ``metrics.csv`` of a folder it enters; ``last`` then finds the newest state there."""
    entry = first_logger(config.trainer.logger)
    if entry is None or entry is True or _class_name(entry) not in CONTINUED_LOGGERS:
        return
    args = _get(entry, "init_args")
    if args is None or _get(args, "version") is not None:
        return
    runs = Path(_get(args, "save_dir", config.trainer.default_root_dir)) / str(_get(args, "name", "") or "")
    checkpoint = Path(config.ckpt_path).resolve()
    version = checkpoint.parent.parent
    if (checkpoint.parent.name == "checkpoints" and version.parent == runs.resolve()
            and version.name.startswith("version_") and version.name[8:].isdigit()):
        args["version"] = int(version.name[8:])





def mark_session_start(logger, resumed_step: int | None) -> None:
    """Have each ``TensorBoardLogger`` of a ``fit`` begin its events file with a session start
    (``SessionLog.START``: torch's ``SummaryWriter(purge_step=...)``, which both sides' loggers
    pass on): at step 0 in the new run folder of a fresh fit, at the checkpoint's
    ``global_step`` (``resumed_step``) in a resumed one.

    TensorBoard reads a later start in a run as a restart and shows none of the run's earlier
    events at or after its step (RustBoard and ``cnn.tools.events`` at any start, TensorBoard's
    Python loader, ``--load_fast false``, from the run's second on: hence the mark at step 0). A
    run killed after its newest whole checkpoint logged steps that the resume trains again (a
    kill during a ``last`` write: an epoch's points); each such step then shows the values of the
    timeline that went on, and nothing is deleted. The first step a resume logs is the
    checkpoint's ``global_step`` (its ``train/loss``; its own epoch's values are at one less).
    Not marked: a fresh fit into a fixed ``version`` (a folder that may hold another run's
    events, which the mark would hide) and a resume from step 0."""
    for entry in logger if isinstance(logger, list) else [logger]:
        args = _get(entry, "init_args") if entry not in (None, True, False) else None
        if args is None or _class_name(entry) not in CONTINUED_LOGGERS:
            continue
        if resumed_step:
            args["purge_step"] = int(resumed_step)
        elif resumed_step is None and _get(args, "version") is None:
            args["purge_step"] = 0
