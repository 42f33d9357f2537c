"""``cli.py plot``: real TensorBoard event files in, one PNG out, and the drawn series are the logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from cnn import schema
from cnn.tools import plot
from cnn.tools.events import read_scalars
from tests.cli_runs import run_cli

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS_PER_EPOCH, EPOCHS, START = 4, 3, 1_000.0

# Two runs with known numbers: (seconds per step, seconds of validation, test accuracy or None).
RUNS = {"torch/version_0": (0.5, 1.0, 0.9931), "mlx/version_0": (0.25, 0.5, None)}


def train_loss(run: str, step: int) -> float:
    return (2.0 if run.startswith("torch") else 3.0) / (1 + step)


def val_acc(run: str, epoch: int) -> float:
    return 0.5 + 0.1 * epoch + (0.01 if run.startswith("mlx") else 0.0)


def write_run(run_dir: Path, run: str) -> dict:
    """Write one fit(+test) run the way the loggers do, and return what a plot should show.

    Steps are laid out so that epoch e's end-of-epoch writes share a global step with epoch
    e+1's first training step, the collision the ``epoch`` scalar must disambiguate.
    """
    step_s, val_s, test_acc = RUNS[run]
    writer = EventFileWriter(str(run_dir))
    clock = START

    def log(step: int, _epoch: int, **metrics: float) -> None:
        # Like log_metrics: every write carries ``epoch`` at the same step and wall time.
        for tag, value in {**metrics, "epoch": _epoch}.items():
            summary = Summary(value=[Summary.Value(tag=tag.replace("__", "/"), simple_value=value)])
            writer.add_event(Event(wall_time=clock, step=step, summary=summary))

    expected = {k: [] for k in (schema.TRAIN_ACC, schema.VAL_ACC, schema.TRAIN_LOSS,
                                schema.VAL_LOSS, plot.EPOCH_TIME)}
    epoch_start = START
    for epoch in range(EPOCHS):
        losses = []
        for i in range(STEPS_PER_EPOCH):
            step = epoch * STEPS_PER_EPOCH + i
            clock += step_s
            log(step, train__loss=train_loss(run, step), _epoch=epoch)
            losses.append(train_loss(run, step))
        clock += val_s
        end = (epoch + 1) * STEPS_PER_EPOCH
        log(end, val__loss=1.0 / (epoch + 1), val__acc=val_acc(run, epoch), _epoch=epoch)
        log(end, train__acc=val_acc(run, epoch) - 0.05, _epoch=epoch)
        expected[schema.TRAIN_LOSS].append((epoch, sum(losses) / len(losses)))
        expected[schema.VAL_LOSS].append((epoch, 1.0 / (epoch + 1)))
        expected[schema.VAL_ACC].append((epoch, val_acc(run, epoch)))
        expected[schema.TRAIN_ACC].append((epoch, val_acc(run, epoch) - 0.05))
        # The first epoch counts from the run's first event, i.e. one step after START.
        expected[plot.EPOCH_TIME].append((epoch, clock - (epoch_start if epoch else START + step_s)))
        epoch_start = clock
    if test_acc is not None:
        clock += 2.0
        log(EPOCHS * STEPS_PER_EPOCH, test__acc=test_acc, test__loss=0.02, _epoch=EPOCHS)
    writer.close()
    return expected


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("logs") / "mnist"
    expected = {}
    for run in RUNS:
        (root / run).mkdir(parents=True)
        expected[run] = write_run(root / run, run)
    return root, expected


def assert_series_equal(drawn: list[tuple[int, float]], logged: list[tuple[int, float]]) -> None:
    assert [e for e, _ in drawn] == [e for e, _ in logged]
    # Event files store float32 values; wall times are doubles.
    assert [v for _, v in drawn] == pytest.approx([v for _, v in logged], rel=1e-6, abs=1e-6)


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 800 and image.height > 300


def test_plot_writes_one_valid_png_and_leaves_no_temp_file(logdir, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert plot.main([str(logdir[0]), "--out", str(out), "--title", "MNIST"], "torch") == 0
    assert_valid_png(out)
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
    assert capsys.readouterr().err == ""


def test_the_drawn_series_equal_the_values_in_the_event_files(logdir, tmp_path):
    root, expected = logdir
    runs = {run: read_scalars(root / run) for run in RUNS}
    drawn = plot.plot_runs(runs, tmp_path / "p.png")
    labels = {"torch/version_0": "torch/version_0 (test 99.31%)", "mlx/version_0": "mlx/version_0"}
    assert set(drawn) == set(labels.values())
    for run, label in labels.items():
        assert set(drawn[label]) == set(expected[run])
        for name, series in expected[run].items():
            assert_series_equal(drawn[label][name], series)
    assert_valid_png(tmp_path / "p.png")


def test_an_existing_png_is_replaced_only_with_force(logdir, tmp_path, capsys):
    out = tmp_path / "curves.png"
    out.write_bytes(b"old")
    assert plot.main([str(logdir[0]), "--out", str(out)], "mlx") == 1
    assert out.read_bytes() == b"old" and "--force" in capsys.readouterr().err
    assert plot.main([str(logdir[0]), "--out", str(out), "--force"], "mlx") == 0
    assert_valid_png(out)


def spy_on_plot_runs(monkeypatch) -> dict:
    """Record the runs ``main`` hands to ``plot_runs`` and what it drew."""
    seen, original = {}, plot.plot_runs

    def spy(runs, out, title=None, settings=None):
        seen["runs"] = sorted(runs)
        seen["drawn"] = original(runs, out, title, settings)
        return seen["drawn"]

    monkeypatch.setattr(plot, "plot_runs", spy)
    return seen


def test_runs_glob_keeps_only_the_matching_runs(logdir, tmp_path, monkeypatch):
    seen = spy_on_plot_runs(monkeypatch)
    assert plot.main([str(logdir[0]), "--out", str(tmp_path / "m.png"), "--runs", "mlx/*"],
                     "torch") == 0
    assert list(seen["drawn"]) == ["mlx/version_0"]
    assert_valid_png(tmp_path / "m.png")


def test_a_runs_glob_that_matches_nothing_is_one_error_line(logdir, tmp_path, capsys):
    out = tmp_path / "none.png"
    assert plot.main([str(logdir[0]), "--out", str(out), "--runs", "jax/*"], "torch") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def test_a_parent_log_folder_labels_runs_by_their_path_below_it(logdir, tmp_path, monkeypatch):
    seen = spy_on_plot_runs(monkeypatch)
    assert plot.main([str(logdir[0].parent), "--out", str(tmp_path / "all.png")], "torch") == 0
    assert seen["runs"] == ["mnist/mlx/version_0", "mnist/torch/version_0"]


@pytest.mark.parametrize("make", [lambda p: p / "absent", lambda p: p])
def test_a_missing_or_empty_log_folder_is_one_error_line_and_exit_1(make, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert plot.main([str(make(tmp_path)), "--out", str(out)], "torch") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_the_real_cli_plots_a_log_folder(logdir, tmp_path):
    out = tmp_path / "cli.png"
    done = run_cli("plot", str(logdir[0]), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert_valid_png(out)


def test_the_real_cli_reports_a_missing_folder_in_one_line(tmp_path):
    done = run_cli("plot", str(tmp_path / "nope"), "--out", str(tmp_path / "x.png"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


def resumed_run(run_dir: Path, cut_second_file: bool = False) -> None:
    """A run killed after step 5 and resumed from its checkpoint at step 4, as the loggers write
    it: steps 0-5 in the first file, then a file that starts with a session start at 4 (the
    resumed fit's ``purge_step``) and logs steps 4-7 anew."""
    for second, (start, steps, value) in enumerate([(0, range(0, 6), 1.0), (4, range(4, 8), 2.0)]):
        scratch = run_dir / f"writer{second}"
        writer = EventFileWriter(str(scratch))
        writer.add_event(Event(wall_time=START, step=start, session_log={"status": "START"}))
        for step in steps:
            writer.add_event(Event(wall_time=START + step, step=step, summary=Summary(
                value=[Summary.Value(tag=schema.TRAIN_LOSS, simple_value=value)])))
        writer.close()
        # named as two processes a second apart name them: the order TensorBoard reads them in
        (written,) = scratch.iterdir()
        written.rename(run_dir / f"events.out.tfevents.{1_000_000_000 + second}.host.{100 + second}.0")
        scratch.rmdir()
    if cut_second_file:
        last = sorted(run_dir.glob("events.out.tfevents.*"))[-1]
        last.write_bytes(last.read_bytes()[:-5])  # a writer killed inside its last record


@pytest.mark.parametrize("cut", [False, True])
def test_a_resumed_runs_session_start_hides_the_replaced_steps_of_its_earlier_file(tmp_path, cut):
    resumed_run(tmp_path, cut_second_file=cut)
    points = [(s.step, s.value) for s in read_scalars(tmp_path)[schema.TRAIN_LOSS]]
    assert points == [(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0), (5, 2.0), (6, 2.0)] + \
        ([] if cut else [(7, 2.0)])
