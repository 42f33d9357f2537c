"""Running the real command line from tests, and reading back what it logged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cnn.tools.events import run_dirs

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python cli.py ARGS`` in a subprocess, as a user would type it."""
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def fit_both(logs: Path, *args: str, config: str = "configs/mnist.yaml") -> dict[str, Path]:
    """``fit`` with each framework into ``logs``; the run directory of each."""
    runs = {}
    for framework in ("torch", "mlx"):
        result = run_cli("fit", "--config", config, "--framework", framework,
                         "--trainer.default_root_dir", str(logs),
                         "--trainer.enable_progress_bar", "false", *args)
        assert result.returncode == 0, f"{framework}: {result.stderr[-4000:]}"
        (runs[framework],) = [d for d in run_dirs(logs) if d.parent.name == framework]
    return runs
