"""``python cli.py bench``: training and evaluation speed of every variant, from one config.

Variants: torch ``plain`` (the reference: a hand-written loop, Adam, NLL) and ``lightning``
(a real ``lightning.Trainer`` with our ``Classifier`` and ``DataModule``); MLX ``eager`` and
``compiled`` (hand-written loops, the latter ``mx.compile(inputs=state, outputs=state)`` as
mlx-examples do) and ``trainer_eager`` / ``trainer_compiled`` (our MLX ``Trainer``). All train
on the same real batches in the same order, produced live from the in-memory uint8 split
(slice, layout, tensor conversion) as in ``fit``. Both torch variants follow ``--channels-last``,
``--compile`` and ``--precision`` (default: the config's), so their ratio compares loops.

Every figure is the median of ``--repeats`` repeats, min and max kept (with an odd count
the img/s and ms/step medians come from the same repeat; with an even one each is the mean
of its two middle values, so they need not be reciprocal). Repeats are
interleaved (repeat 1 of every variant, then repeat 2, ...) so a background load spreads over
all variants. One repeat of one variant at one batch size builds a fresh model, then runs
steps numbered from 0 (W = max(warmup, 1), S = steps, see ``Plan``): ``[0, W)`` untimed
warm-up, ``[W, W+S)`` the throughput window, ``[W+S, W+2S)`` the forward/backward window (it
synchronises inside every step, so it is kept apart), and with ``--full-epoch`` one epoch's
worth of further steps. Clocks are read after synchronising: ``torch.cuda.synchronize()`` on
a GPU; ``mx.eval`` of loss, parameters, optimizer and RNG state in MLX, which is lazy.
Evaluation does not depend on the training batch size, so it is measured once per variant
and repeat, at the config's ``eval_batch_size`` (``EvalPlan``).

This module is the command (``main``): its options, which halves run, the interleaved repeats.
What a repeat runs is ``bench_plan``; its clocks, shared by ``bench_torch`` and ``bench_mlx``,
are ``bench_clock``; the figures, table and files are ``bench_report``; ``--fit-memory`` is
``bench_memory``. None of them imports torch or mlx; the halves are imported as asked.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from pathlib import Path

from cnn import atomic
from cnn.tools import bench_clock
from cnn.tools.bench_clock import EvalRun, TrainRun
from cnn.tools.bench_memory import fit_memory
from cnn.tools.bench_plan import PRECISIONS, BenchError, Settings, read_settings
from cnn.tools.bench_report import eval_figures, metadata_of, ratios, table, train_figures, write_json, write_scalars

FRAMEWORKS = {"torch": "cnn.tools.bench_torch", "mlx": "cnn.tools.bench_mlx"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise BenchError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cli.py bench", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="YAML config, e.g. configs/mnist.yaml")
    p.add_argument("--data-dir", default=None,
                   help="the config's data.data_dir instead (dataset folder: your images)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--batch-sizes", default=None, help="comma list (default: data.batch_size)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per window")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (at least 1)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--full-epoch", action="store_true", help="measure epoch_s (slow)")
    p.add_argument("--test-images", type=int, default=None,
                   help="images of the test pass (default: the whole test split)")
    p.add_argument("--out", type=Path, help="write every figure as JSON here")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--logdir", type=Path, default=Path("logs/bench"),
                   help="TensorBoard scalars go to LOGDIR/version_N")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="torch, both variants: channels_last memory format (default: the "
                        "config's model.channels_last, else on)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch, both variants: torch.compile the network (default: the "
                        "config's model.compile, else off)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="torch, both variants (bf16-mixed: autocast in the plain loop, "
                        "Trainer(precision=...) in Lightning; default: the config's "
                        "trainer.precision, else 32-true)")
    p.add_argument("--fit-memory", action="store_true",
                   help="also run `fit` in a subprocess: peak resident memory and wall time")
    p.add_argument("--fit-epochs", type=int, default=1)
    p.add_argument("--fit-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for that fit, e.g. --fit-arg=--trainer.limit_val_batches=2")
    return p


def load_frameworks(frameworks: list[str], device: str) -> dict:
    """Import ``bench_torch`` / ``bench_mlx`` as asked and check that ``device`` exists.

    torch first: loaded after ``cnn.mx`` (which may load a system OpenBLAS globally for MLX),
    torch's matrix products would bind to OpenBLAS instead of its own MKL (see ``bench_torch``).
    """
    modules = {fw: importlib.import_module(FRAMEWORKS[fw]) for fw in FRAMEWORKS if fw in frameworks}
    for module in modules.values():
        module.check_device(device)
    return modules


def measure(settings: Settings, modules: dict, repeats: int, progress=print) -> tuple:
    """Run every repeat, interleaved; returns ``(train rows, eval rows)`` of summarized figures."""
    started = bench_clock.clock()
    say = lambda text: progress(f"[{bench_clock.clock() - started:6.1f} s] {text}")  # noqa: E731
    train_runs: dict[tuple, list[TrainRun]] = {}
    eval_runs: dict[tuple, list[EvalRun]] = {}
    for repeat in range(repeats):
        for fw, module in modules.items():
            for variant, (train, evaluate, _) in module.VARIANTS.items():
                for size in settings.batch_sizes:
                    say(f"repeat {repeat + 1}/{repeats}: {fw} {variant} batch {size}")
                    train_runs.setdefault((fw, variant, size), []).append(train(settings, size))
                say(f"repeat {repeat + 1}/{repeats}: {fw} {variant} evaluation")
                eval_runs.setdefault((fw, variant), []).append(evaluate(settings))
    train_rows = []
    for (fw, variant, size), runs in train_runs.items():
        figures = train_figures(runs, settings)
        row = {"framework": fw, "variant": variant, "batch_size": size,
               "description": modules[fw].VARIANTS[variant][2],
               "steps_per_epoch": settings.steps_per_epoch(size),
               "epoch_estimated": not settings.full_epoch, "figures": figures}
        if "fwd_ms" not in figures:
            row["not_measured"] = {"fwd_ms and bwd_ms": "not separable: no on_before_backward "
                                                        "between them (one compiled graph)"}
        train_rows.append(row)
    eval_rows = [{"framework": fw, "variant": variant, "eval_batch_size": settings.eval_batch_size,
                  "test_images": settings.test_images, "figures": eval_figures(runs)}
                 for (fw, variant), runs in eval_runs.items()]
    return train_rows, eval_rows


def main(argv: list[str], framework: str | None = "torch") -> int:
    """Entry point of ``cli.py bench``; returns the exit status (2: a user error, one line)."""
    try:
        args = _parser().parse_args(argv)
        framework = framework or "torch"
        if framework not in (*FRAMEWORKS, "both"):
            raise BenchError(f"unknown framework {framework!r}: choose torch, mlx or both")
        frameworks = list(FRAMEWORKS) if framework == "both" else [framework]
        from cnn.bounded_yaml import read_config  # as fit reads it: bounded, one line when wrong

        config = read_config(args.config)
        if args.out:  # before minutes of measuring, and never over a checkpoint or the config
            atomic.check_output(args.out, args.force, "the .json file")
        settings = read_settings(args, config)
        command = shlex.join(["python", "cli.py", "bench", "--framework", framework, *argv])
        modules = load_frameworks(frameworks, args.device)
        meta = metadata_of(settings, modules, command)
        train_rows, eval_rows = measure(settings, modules, args.repeats,
                                        progress=lambda line: print(line, file=sys.stderr))
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except Exception as error:  # noqa: BLE001 - narrowed just below
        from cnn.errors import ConfigError, DataError
        if not isinstance(error, (BenchError, DataError, ConfigError, OSError)):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    meta["loadavg_end"] = list(os.getloadavg())
    report = {"schema": "cnn-bench/1", "meta": meta, "results": train_rows, "eval": eval_rows,
              "ratios": ratios(train_rows), "fit_memory": []}
    if args.fit_memory:
        fit_args = (["--data.data_dir", args.data_dir] if args.data_dir else []) + args.fit_arg
        for fw in frameworks:
            print(f"fit: {fw}, {args.fit_epochs} epoch(s)", file=sys.stderr)
            report["fit_memory"].append(fit_memory(Path(args.config), fw, args.device,
                                                   args.fit_epochs, fit_args))
    report["tensorboard_dir"] = str(write_scalars(args.logdir, report))
    print(table(report))
    for run in report["fit_memory"]:
        print(f"fit {run['framework']}: peak RSS {run['peak_rss_mib']:,.0f} MiB, "
              f"{run['wall_s']:.1f} s, exit {run['returncode']}")
    if args.out:
        write_json(args.out, report)
    return 1 if any(run["returncode"] for run in report["fit_memory"]) else 0
