"""``cli.py plot``'s comparison table: one row per run with its framework, key settings, best
val/acc, test acc and seconds per epoch, read from the files the runs wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cnn.hparams import write_hparams
from cnn.tools import plot
from cnn.tools.events import read_scalars, read_settings
from tests.tools.test_plot import EPOCHS, RUNS, START, assert_valid_png, val_acc, write_run

TORCH_HPARAMS = {"lr": 0.001, "dropout": 0.25, "weight_decay": 0.0, "seed": 42, "lr_schedule": "cosine",
                 "classes": ["0", "1"], "_instantiator": "lightning.pytorch.cli.instantiate_module"}


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> tuple[Path, dict]:
    """The two runs of tests.tools.test_plot; the torch one wrote its HPARAMS-tab settings, the MLX
    one only an ``hparams.yaml`` (as a run from before those existed)."""
    root = tmp_path_factory.mktemp("logs") / "mnist"
    expected = {}
    for run in RUNS:
        (root / run).mkdir(parents=True)
        expected[run] = write_run(root / run, run)
    write_hparams(str(root / "torch/version_0"), TORCH_HPARAMS, "torch", START)
    (root / "mlx/version_0" / "hparams.yaml").write_text(yaml.safe_dump({"lr": 0.002, "dropout": 0.0}))
    return root, expected


def test_read_settings_gives_the_hparams_tab_values_with_the_framework_else_hparams_yaml(logdir):
    root, _ = logdir
    torch_settings = read_settings(root / "torch/version_0")
    assert torch_settings["framework"] == "torch" and torch_settings["lr"] == pytest.approx(0.001)
    assert torch_settings["classes"] == "['0', '1']" and "_instantiator" not in torch_settings
    assert read_settings(root / "mlx/version_0") == {"lr": 0.002, "dropout": 0.0}


def test_each_run_has_one_row_with_framework_settings_best_val_acc_test_acc_and_seconds_per_epoch(logdir):
    root, expected = logdir
    runs = {run: read_scalars(root / run) for run in RUNS}
    settings = {run: read_settings(root / run) for run in RUNS}
    rows = {row[0]: row for row in plot.comparison_rows(runs, settings)}
    assert set(rows) == set(RUNS)
    for run, row in rows.items():
        times = sorted(t for _, t in expected[run][plot.EPOCH_TIME])
        assert row[3] == f"{100 * max(val_acc(run, e) for e in range(EPOCHS)):.2f}%"
        assert row[5] == f"{times[len(times) // 2]:.1f}"  # three epochs: the middle one
    assert rows["torch/version_0"][1:3] == ("torch", "lr=0.001, lr_schedule=cosine, dropout=0.25, weight_decay=0, "
                                                     "seed=42")
    assert rows["torch/version_0"][4] == "99.31%"
    # no framework setting: the path names it; no test run: a dash
    assert rows["mlx/version_0"][1:3] == ("mlx", "lr=0.002, dropout=0")
    assert rows["mlx/version_0"][4] == "-"


def test_the_plot_with_its_table_is_one_valid_png(logdir, tmp_path):
    root, _ = logdir
    runs = {run: read_scalars(root / run) for run in RUNS}
    out = tmp_path / "curves.png"
    plot.plot_runs(runs, out, "mnist", {run: read_settings(root / run) for run in RUNS})
    assert_valid_png(out)
