"""How often an MLX ``test`` ignores a SIGINT sent as its progress bar appears (docs/reliability.md).

    python scripts/sigint_at_first_batch.py [TRIES]

Trains a two-step checkpoint in a temporary folder, then TRIES times runs ``cli.py test`` on it,
sends SIGINT to the process as soon as ``Testing`` appears on its output, and counts how it ended:
interrupted (exit 130), the signal sent after the results were already printed (too late to
count), or ignored (the test ran to its end).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(tries: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        short = ["--config", "configs/mnist.yaml", "--data.val_fraction", "0.01", "--trainer.limit_val_batches", "1",
                 "--trainer.limit_test_batches", "3", "--trainer.default_root_dir", scratch]
        subprocess.run([sys.executable, "cli.py", "fit", "--framework", "mlx", *short, "--trainer.max_epochs", "1",
                        "--trainer.limit_train_batches", "2", "--trainer.enable_progress_bar", "false"],
                       cwd=ROOT, check=True, capture_output=True)
        (last,) = Path(scratch).rglob("last.safetensors")
        counts = {"interrupted": 0, "too late": 0, "ignored": 0}
        for _ in range(tries):
            process = subprocess.Popen([sys.executable, "cli.py", "test", "--framework", "mlx", *short,
                                        "--ckpt_path", str(last)], cwd=ROOT, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)
            seen = b""
            while b"Testing" not in seen and (chunk := os.read(process.stdout.fileno(), 65536)):
                seen += chunk
            process.send_signal(signal.SIGINT)
            printed = b"test/acc" in seen
            process.communicate()
            outcome = "interrupted" if process.returncode == 128 + signal.SIGINT else \
                "too late" if printed else "ignored"
            counts[outcome] += 1
        print(", ".join(f"{name}: {count}" for name, count in counts.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
