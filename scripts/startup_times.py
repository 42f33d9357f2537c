"""Start-up wall time of commands that train nothing, for one or more trees of this project.

    python scripts/startup_times.py before=../clone-at-old-commit now=.  [--repeats 3]

Each command runs ``--repeats`` times per tree with the trees alternating, so a change in the
machine's load falls on both; prints the median and [min-max] per command and tree. Time it on
an idle machine (docs/performance.md, Method).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "fit --help (torch)": ["fit", "--help"],
    "--framework mlx fit --help": ["--framework", "mlx", "fit", "--help"],
    "validate --help (torch)": ["validate", "--help"],
    "fit --config nonexistent.yaml (torch)": ["fit", "--config", "nonexistent.yaml"],
    "--framework mlx fit --config nonexistent.yaml": ["--framework", "mlx", "fit", "--config", "nonexistent.yaml"],
    "convert --help": ["convert", "--help"],
    "plot --help": ["plot", "--help"],
    "bench --help": ["bench", "--help"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="LABEL=PATH of a tree of this project")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trees = dict(tree.split("=", 1) for tree in args.trees)
    print("| command | " + " | ".join(trees) + " |")
    print("|---" * (len(trees) + 1) + "|")
    for name, argv in COMMANDS.items():
        times: dict[str, list[float]] = {label: [] for label in trees}
        codes: dict[str, int] = {}
        for _ in range(args.repeats):
            for label, path in trees.items():
                start = time.perf_counter()
                codes[label] = subprocess.run([sys.executable, "cli.py", *argv], cwd=path,
                                              capture_output=True).returncode
                times[label].append(time.perf_counter() - start)
        cells = [f"{statistics.median(t):.2f} s [{min(t):.2f}-{max(t):.2f}] exit {codes[label]}"
                 for label, t in times.items()]
        print(f"| `{name}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
