"""The peak memory and wall time of a real ``cli.py fit``, for ``cli.py bench --fit-memory``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from cnn.tools import bench_clock


def write_peak_rss(path: str) -> None:
    """Write this process's peak resident memory in KiB (``VmHWM``) to ``path``; nothing where
    ``/proc`` is missing. Registered with ``atexit`` by the ``fit`` that ``fit_memory`` starts."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    Path(path).write_text(line.split()[1])
                    return
    except OSError:
        return


def fit_memory(config: Path, framework: str, device: str, epochs: int, extra: list[str]) -> dict:
    """Run ``cli.py fit`` in a subprocess: its peak resident memory (MiB) and wall time (s).

    The peak is the child's own ``VmHWM`` (``/proc/self/status``), which it writes to a file
    as it exits. Not ``ru_maxrss``: Linux carries a process's peak across ``fork`` and
    ``exec``, so a child forked from this bench process, which holds both frameworks, would
    report this process's resident size, the same for both frameworks (docs/performance.md,
    "Peak memory"). Where ``/proc`` is missing (macOS) the
    ``os.wait4`` figure is reported instead, flagged ``peak_rss_source: "ru_maxrss"``. Logs and
    checkpoints go to a temporary folder, removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        peak_file = Path(tmp) / "peak"
        command = [sys.executable, "-c", "import atexit, sys; from cnn.tools.bench_memory import "
                   f"write_peak_rss; atexit.register(write_peak_rss, {str(peak_file)!r}); "
                   "from cnn.cli import main; sys.exit(main(sys.argv[1:]))", "fit", "--config", str(config),
                   "--framework", framework, "--trainer.max_epochs", str(epochs),
                   "--trainer.enable_progress_bar", "false", "--trainer.accelerator", device,
                   "--trainer.default_root_dir", tmp, *extra]
        log_path = Path(tmp) / "fit.log"
        with open(log_path, "wb") as log:
            started = bench_clock.clock()
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(child.pid, 0)
            wall = bench_clock.clock() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        own_peak = peak_file.read_text().strip() if peak_file.exists() else ""
    peak, source = (int(own_peak) / 1024.0, "VmHWM") if own_peak else (usage.ru_maxrss / 1024.0,
                                                                        "ru_maxrss")
    return {"framework": framework, "epochs": epochs, "returncode": child.returncode,
            "peak_rss_mib": peak, "peak_rss_source": source, "wall_s": wall,
            "command": shlex.join(["python", "cli.py", *command[3:]]),
            "last_line": tail[0] if child.returncode else None}
