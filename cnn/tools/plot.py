"""``python cli.py plot LOGDIR --out FILE.png``: the training curves of every run, one figure.

Contract: every ``version_N`` directory under LOGDIR (any depth: ``logs/mnist`` holding
``torch/version_0`` and ``mlx/version_3``, or ``logs`` holding several data sets) is one run,
labelled by its path relative to LOGDIR. The single PNG has three panels sharing the epoch
axis, one colour per run so both frameworks overlay:

* accuracy: ``val/acc`` solid, ``train/acc`` dashed;
* loss: ``val/loss`` solid, ``train/loss`` dashed, the latter the mean of the per-step values
  logged in each epoch (the ``epoch`` scalar written beside every step says which epoch);
* seconds per epoch: between consecutive epoch-end writes (``val/acc``, else ``train/acc``),
  the first epoch counted from the run's first scalar event.

A run's last ``test/acc`` goes into its legend label. Under the curves, a table compares the
runs: framework, key settings (from what the run wrote for TensorBoard's HPARAMS tab, else its
``hparams.yaml``), best ``val/acc``, last ``test/acc`` and the median seconds per epoch. The PNG is written atomically
(``cnn.atomic``: temp file in the same directory, then ``os.replace``) so a reader never sees
half an image. ``--out`` must end in ``.png`` and an existing file is replaced only with
``--force`` (as ``convert``), so a mistyped ``--out`` never turns a checkpoint into a picture.
A missing LOGDIR, one without event files, or a ``--runs`` filter that keeps nothing is one
``error:`` line on stderr and exit status 1; an events file cut short (a killed writer, a full
disk) is one ``warning:`` line, and what it holds is drawn.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections import defaultdict
from pathlib import Path

from cnn import atomic, schema
from cnn.command_line import FRAMEWORKS
from cnn.errors import ConfigError
from cnn.tools.events import Scalar, read_scalars, read_settings, run_dirs, truncated_files

Series = list[tuple[int, float]]
EPOCH_TIME = "epoch_time"
# The settings the comparison table shows, where a run has them.
KEY_SETTINGS = ("lr", "lr_schedule", "dropout", "weight_decay", "seed")
TABLE_COLUMNS = ("run", "framework", "settings", "best val/acc", "test acc", "s/epoch")


def _epochs_by_step(scalars: dict[str, list[Scalar]]) -> dict[int, list[Scalar]]:
    """``epoch`` events grouped by step, so each lookup is O(1) even at one log per step."""
    by_step: dict[int, list[Scalar]] = defaultdict(list)
    for event in scalars.get(schema.EPOCH, []):
        by_step[event.step].append(event)
    return by_step


def _epoch_of(epochs: dict[int, list[Scalar]], point: Scalar) -> int | None:
    """The ``epoch`` value written together with ``point``.

    Not a plain step -> epoch dict: the epoch-end writes of epoch k and the first step write of
    epoch k+1 can share a global step, so among ``epoch`` events at that step we take the one
    written closest in time (both are written within the same ``log_metrics`` call).
    """
    same_step = epochs.get(point.step)
    if not same_step:
        return None
    return int(round(min(same_step, key=lambda e: abs(e.wall_time - point.wall_time)).value))


def _per_epoch(scalars: dict[str, list[Scalar]], tag: str) -> dict[int, Scalar]:
    """Epoch -> the first ``tag`` event of that epoch (a later ``validate`` into the same
    version directory must not move the point fit wrote, nor its time mark)."""
    out: dict[int, Scalar] = {}
    epochs = _epochs_by_step(scalars)
    for point in scalars.get(tag, []):
        epoch = _epoch_of(epochs, point)
        if epoch is not None:
            out.setdefault(epoch, point)
    return out


def run_series(scalars: dict[str, list[Scalar]]) -> dict[str, Series]:
    """The per-epoch series of one run, as drawn: name -> [(epoch, value)] sorted by epoch."""
    series: dict[str, Series] = {}
    for tag in (schema.TRAIN_ACC, schema.VAL_ACC, schema.VAL_LOSS):
        points = _per_epoch(scalars, tag)
        if points:
            series[tag] = [(e, points[e].value) for e in sorted(points)]
    losses: dict[int, list[float]] = defaultdict(list)
    epochs = _epochs_by_step(scalars)
    for point in scalars.get(schema.TRAIN_LOSS, []):
        epoch = _epoch_of(epochs, point)
        if epoch is not None:
            losses[epoch].append(point.value)
    if losses:
        series[schema.TRAIN_LOSS] = [(e, sum(v) / len(v)) for e, v in sorted(losses.items())]
    # val/acc marks the end of an epoch, but with check_val_every_n_epoch > 1 it skips epochs;
    # then train/acc (written every epoch) is the honest clock.
    marks = _per_epoch(scalars, schema.VAL_ACC)
    train_marks = _per_epoch(scalars, schema.TRAIN_ACC)
    if not marks or set(train_marks) - set(marks):
        marks = train_marks
    if marks:
        start = min(p.wall_time for points in scalars.values() for p in points)
        times, previous = [], start
        for epoch in sorted(marks):
            times.append((epoch, marks[epoch].wall_time - previous))
            previous = marks[epoch].wall_time
        series[EPOCH_TIME] = times
    return series


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def comparison_rows(runs: dict[str, dict[str, list[Scalar]]],
                    settings: dict[str, dict[str, object]]) -> list[tuple[str, ...]]:
    """One row (``TABLE_COLUMNS``) per run with something to draw, sorted by name: its framework
    (its setting, else the framework its path names), key settings, best ``val/acc``, last
    ``test/acc``, median seconds per epoch (the first epoch's start-up weighs no more than one)."""
    rows = []
    for name, scalars in sorted(runs.items()):
        series = run_series(scalars)
        if not series:
            continue
        own = settings.get(name, {})
        framework = own.get("framework") or next((p for p in name.split("/") if p in FRAMEWORKS), "-")
        keys = ", ".join(f"{k}={own[k]:g}" if isinstance(own[k], float) else f"{k}={own[k]}"
                         for k in KEY_SETTINGS if k in own)
        val = scalars.get(schema.VAL_ACC)
        test = scalars.get(schema.TEST_ACC)
        times = sorted(t for _, t in series.get(EPOCH_TIME, []))
        median = (times[(len(times) - 1) // 2] + times[len(times) // 2]) / 2 if times else None
        rows.append((name, str(framework), keys or "-", _percent(max(v.value for v in val) if val else None),
                     _percent(test[-1].value if test else None), "-" if median is None else f"{median:.1f}"))
    return rows


def _label(name: str, scalars: dict[str, list[Scalar]]) -> str:
    test = scalars.get(schema.TEST_ACC)
    return f"{name} (test {100 * test[-1].value:.2f}%)" if test else name


def plot_runs(runs: dict[str, dict[str, list[Scalar]]], out: Path, title: str | None = None,
              settings: dict[str, dict[str, object]] | None = None) -> dict[str, dict[str, Series]]:
    """Draw ``runs`` (name -> ``read_scalars`` output) into the PNG ``out``, atomically, with the
    ``comparison_rows`` table under the curves (``settings``: name -> ``read_settings`` output).

    Returns what was drawn: legend label -> series name (``train/acc``, ``val/acc``,
    ``train/loss``, ``val/loss``, ``epoch_time``) -> [(epoch, value)]. Runs with nothing
    per-epoch to draw (e.g. a test-only version directory) are left out.
    """
    # The object API with the Agg canvas: no pyplot global state, no display needed.
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    drawn = {_label(n, s): run_series(s) for n, s in sorted(runs.items())}
    drawn = {label: series for label, series in drawn.items() if series}
    rows = comparison_rows(runs, settings or {})
    table_height = 0.3 * (len(rows) + 1) + 0.3
    fig = Figure(figsize=(16, 5 + table_height), layout="constrained")
    FigureCanvasAgg(fig)
    curves, below = fig.subfigures(2, 1, height_ratios=[5, table_height])
    acc, loss, secs = curves.subplots(1, 3)
    # One colour per run across all panels; tab20 only when tab10 would repeat colours.
    palette = colormaps["tab10" if len(drawn) <= 10 else "tab20"].colors
    handles = []
    for i, (label, series) in enumerate(drawn.items()):
        colour = palette[i % len(palette)]
        for axes, tag, style in ((acc, schema.VAL_ACC, "-"), (acc, schema.TRAIN_ACC, "--"),
                                 (loss, schema.VAL_LOSS, "-"), (loss, schema.TRAIN_LOSS, "--"),
                                 (secs, EPOCH_TIME, "-")):
            if tag in series:
                xs, ys = zip(*series[tag])
                axes.plot(xs, ys, style, color=colour, marker="o", markersize=3)
        handles.append(Line2D([], [], color=colour, label=label))
    acc.set(title="accuracy", xlabel="epoch", ylabel="accuracy")
    acc.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    loss.set(title="loss", xlabel="epoch", ylabel="cross-entropy")
    secs.set(title="time per epoch", xlabel="epoch", ylabel="seconds")
    secs.set_ylim(bottom=0)
    for axes in (acc, loss, secs):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    # Line style is the same key in both curve panels, so it is said once, in grey.
    acc.legend(handles=[Line2D([], [], color="grey", ls="-", label="val"),
                        Line2D([], [], color="grey", ls="--", label="train")], loc="lower right")
    if handles:
        curves.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    if rows:
        table_axes = below.subplots()
        table_axes.axis("off")
        table = table_axes.table(cellText=rows, colLabels=TABLE_COLUMNS, loc="upper center", cellLoc="left")
        table.auto_set_column_width(list(range(len(TABLE_COLUMNS))))
    if title:
        fig.suptitle(title)
    with atomic.atomic_path(atomic.output_target(out)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return drawn


def check_output(out: Path, force: bool) -> None:
    """ConfigError unless ``out`` may be written: a ``.png`` name, then the rule every output
    a user names follows (``cnn.atomic.check_output``)."""
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out must end in .png, got {str(out)!r}")
    atomic.check_output(out, force, "the .png file")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cli.py plot", description=__doc__.split("\n")[0])
    parser.add_argument("logdir", type=Path, help="folder of runs, e.g. logs/mnist")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--runs", metavar="GLOB", help="keep runs whose label matches, e.g. 'mlx/*'")
    parser.add_argument("--title", help="figure title (default: LOGDIR)")
    return parser


def main(argv: list[str], framework: str | None = None) -> int:
    """Entry point of ``cli.py plot``; ``framework`` is ignored (a log folder holds both)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # usage errors and --help: argparse already printed
        return int(exit_.code or 0)
    try:
        check_output(args.out, args.force)
        if args.logdir.exists() and not args.logdir.is_dir():
            raise ValueError(f"{args.logdir} is a file, not a log folder: give the folder a run "
                             "logged into (--trainer.default_root_dir), which holds its events.out.tfevents.* files")
        if not args.logdir.is_dir():
            raise ValueError(f"log folder {args.logdir} does not exist")
        dirs = run_dirs(args.logdir)
        if not dirs:
            raise ValueError(f"no TensorBoard event files under {args.logdir}")
        # LOGDIR may itself be a version directory: then its own name is the label.
        names = {d: d.relative_to(args.logdir).as_posix() if d != args.logdir else d.name
                 for d in dirs}
        if args.runs:
            names = {d: n for d, n in names.items() if fnmatch.fnmatchcase(n, args.runs)}
            if not names:
                raise ValueError(f"no run under {args.logdir} matches --runs {args.runs!r}")
        runs = {name: read_scalars(d) for d, name in names.items()}
        for path, whole in truncated_files(names):
            print(f"warning: events file {path} is truncated after {whole} whole bytes (a killed "
                  "or still running writer?): its curves end early", file=sys.stderr)
        if not any(run_series(s) for s in runs.values()):
            raise ValueError(f"no per-epoch scalars to plot under {args.logdir}")
        settings = {name: read_settings(d) for d, name in names.items()}
        plot_runs(runs, args.out, args.title or str(args.logdir), settings)
    except (ValueError, ConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0
