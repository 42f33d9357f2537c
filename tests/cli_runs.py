"""Running the real command line from tests, and reading back what it logged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cnn.tools.events import run_dirs
from tests import cli_zygote

ROOT = Path(__file__).resolve().parents[1]

# The short fit of configs/mnist.yaml that tests share (conftest's ``short_fits``). Dropout 0
# and a small lr keep the two frameworks comparable step by step; 2 epochs of 10 batches with a
# train/loss written every 3 steps exercise Lightning's step rule across an epoch boundary.
SHORT_FIT_STEPS_PER_EPOCH, SHORT_FIT_EPOCHS, SHORT_FIT_LOG_EVERY = 10, 2, 3
SHORT_FIT_VAL_IMAGES = 1000
SHORT_FIT = ("--model.dropout", "0", "--model.lr", "1e-4",
             "--trainer.max_epochs", str(SHORT_FIT_EPOCHS),
             "--trainer.limit_train_batches", str(SHORT_FIT_STEPS_PER_EPOCH),
             "--trainer.log_every_n_steps", str(SHORT_FIT_LOG_EVERY),
             "--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2",
             "--data.batch_size", "64", "--data.eval_batch_size", str(SHORT_FIT_VAL_IMAGES // 2))


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 600, **popen) -> subprocess.CompletedProcess:
    """``python cli.py ARGS`` in a new process, as a user would type it (``popen``: e.g. ``env``).
    A torch trainer command is forked from a process that has already imported Lightning
    (``tests.cli_zygote``), unless ``CNN_TEST_FRESH_CLI`` is set."""
    if not os.environ.get("CNN_TEST_FRESH_CLI"):
        forked = cli_zygote.run(args, cwd, timeout, popen)
        if forked is not None:
            return forked
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **popen)


def fit_both(logs: Path, *args: str, config: str = "configs/mnist.yaml") -> dict[str, Path]:
    """``fit`` with each framework into ``logs``; the run directory of each (and what each
    printed on stderr in ``logs/<framework>.stderr``)."""
    runs = {}
    for framework in ("torch", "mlx"):
        result = run_cli("fit", "--config", config, "--framework", framework,
                         "--trainer.default_root_dir", str(logs),
                         "--trainer.enable_progress_bar", "false", *args)
        assert result.returncode == 0, f"{framework}: {result.stderr[-4000:]}"
        (logs / f"{framework}.stderr").write_text(result.stderr)  # for tests of what a run prints
        (runs[framework],) = [d for d in run_dirs(logs) if d.parent.name == framework]
    return runs
