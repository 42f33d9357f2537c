"""``--data.dataset folder`` end to end: fit, predict, logs, checkpoints, convert, errors, in
both frameworks, on a tiny folder of digit PNGs the tests write (and, marked slow, the bar:
10 x 100 digits to > 80% validation accuracy in 2 epochs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cnn.tools import export_pngs
from cnn.tools.convert import convert
from cnn.tools.events import read_scalars, run_dirs
from cnn.weights import read_safetensors, read_weights
from tests.cli_runs import CliResult, run_cli, short_run

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"0": "zero", "1": "one", "7": "seven"}  # words, so a printed name cannot be a label index
CLASSES = sorted(NAMES.values())
SHAPE = ("--data.image_size", "16", "--data.channels", "1", "--data.augment", "false")
# the config's validation split: 1% of a folder of 36 images would be none
TINY = short_run(config=None, train_batches=3, val_batches=2, test_batches=2, batch_size=8, eval_batch_size=8,
                 log_every=1, val_fraction=None)


def cli(*args: str, cache: Path) -> CliResult:
    """``python cli.py ARGS`` with its own user cache (in this process: ``tests.cli_runs``)."""
    return run_cli(*args, env={"XDG_CACHE_HOME": str(cache)})


def digit_folder(out: Path, per_class: int, names: dict[str, str] | None = None) -> Path:
    """Digits exported by ``python -m cnn.tools.export_pngs``, classes renamed by ``names``
    (the others removed), plus one corrupt PNG and one text file among them."""
    assert export_pngs.main([str(out), "--per-class", str(per_class)]) == 0
    for folder in list(out.iterdir()):
        if names is None:
            continue
        if folder.name in names:
            folder.rename(out / names[folder.name])
        else:
            shutil.rmtree(folder)
    first, last = sorted(p for p in out.iterdir())[0], sorted(p for p in out.iterdir())[-1]
    (first / "corrupt.png").write_bytes(next(first.iterdir()).read_bytes()[:50])
    (last / "notes.txt").write_text("not an image\n")
    return out


def one_line_error(result: CliResult, *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and lines and lines[-1].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[-1]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """The tiny folder, its cache, and one short fit per framework (torch first): the
    ``(root, cache, logs, {framework: (run_dir, stderr, cache_files)})``, where ``cache_files`` maps
    each cache file to its ``(inode, mtime_ns)`` as that fit left it (a rewrite, atomic, makes a new
    file: the stamps tell it apart without a clock)."""
    base = tmp_path_factory.mktemp("folder_cli")
    root, cache, logs = digit_folder(base / "digits", 12, NAMES), base / "cache", base / "logs"
    runs = {}
    for framework in ("torch", "mlx"):
        result = cli("fit", "--config", "configs/folder.yaml", "--framework", framework,
                     "--data.data_dir", str(root), *SHAPE, *TINY,
                     "--trainer.default_root_dir", str(logs), cache=cache)
        assert result.returncode == 0, f"{framework}: {result.stderr[-4000:]}"
        (run,) = [d for d in run_dirs(logs) if d.parent.name == framework]
        stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.rglob("*.npz")}
        runs[framework] = (run, result.stderr, stamps)
    return root, cache, logs, runs


def checkpoint(run: Path, framework: str) -> Path:
    suffix = ".ckpt" if framework == "torch" else ".safetensors"
    (best,) = [p for p in (run / "checkpoints").glob(f"epoch=*{suffix}")]
    return best


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_fit_on_a_folder_reports_its_bad_files_in_one_line_and_goes_on(fitted, framework):
    stderr = fitted[3][framework][1]
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"warning: skipped 2 of 38 files under {fitted[0]}")
    assert "one/corrupt.png" in warnings[0] and "zero/notes.txt" in warnings[0]


def test_the_second_fit_reads_the_first_fits_cache(fitted):
    _, cache, _, runs = fitted
    (cached,) = (cache / "cnn" / "folders").glob("*.npz")
    assert list(runs["torch"][2]) == [cached]  # written by the torch fit
    assert runs["mlx"][2] == runs["torch"][2]  # and not again: the same file, unchanged


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_checkpoints_carry_the_class_folder_names_and_convert_keeps_them(fitted, framework,
                                                                       tmp_path):
    best = checkpoint(fitted[3][framework][0], framework)
    assert list(read_weights(str(best)).hyper_parameters["classes"]) == CLASSES
    other = "mlx" if framework == "torch" else "torch"
    out = tmp_path / "converted.safetensors"
    convert(str(best), other, str(out))
    converted = read_safetensors(str(out))
    assert list(converted.hyper_parameters["classes"]) == CLASSES


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_per_class_accuracy_and_the_confusion_matrix_are_labelled_with_the_class_names(
        fitted, framework):
    run = fitted[3][framework][0]
    tags = set(read_scalars(run))
    assert {f"test/acc_class/{name}" for name in CLASSES} <= tags
    assert {"train/loss", "val/acc", "test/acc"} <= tags
    assert run.parent.parent.name == "folder"  # logs/<dataset>/<framework>/version_N
    tested = checkpoint(run, framework)
    assert tested.with_name(tested.name + ".confusion.png").is_file()


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_predict_prints_a_class_folder_name(fitted, framework, tmp_path):
    root, cache, _, runs = fitted
    image = sorted((root / "seven").glob("*.png"))[0]
    out = tmp_path / "predictions.json"
    result = cli("predict", "--config", "configs/folder.yaml", "--framework", framework,
                 "--data.data_dir", str(root), *SHAPE, "--ckpt_path",
                 str(checkpoint(runs[framework][0], framework)),
                 "--data.predict_files", f"[{image}]", "--output", str(out), cache=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert row["file"] == str(image) and row["class"] in CLASSES
    assert f"{image}  {row['class']}" in result.stdout


def test_an_empty_class_folder_is_one_error_line(fitted, tmp_path):
    root = tmp_path / "digits"
    shutil.copytree(fitted[0], root)
    (root / "eight").mkdir()
    result = cli("fit", "--framework", "mlx", "--config", "configs/folder.yaml",
                 "--data.data_dir", str(root), *SHAPE, *TINY,
                 "--trainer.default_root_dir", str(tmp_path / "logs"), cache=fitted[1])
    one_line_error(result, f"class folder {root / 'eight'} holds no files")


def test_fewer_than_two_classes_is_one_error_line_naming_the_folder(tmp_path):
    (tmp_path / "data" / "only").mkdir(parents=True)
    # the link is the same for torch; MLX parses faster
    result = cli("fit", "--framework", "mlx", "--config", "configs/folder.yaml",
                 "--data.data_dir", str(tmp_path / "data"), cache=tmp_path / "cache")
    one_line_error(result, f"{tmp_path / 'data'} needs at least two class subfolders")
    assert "compute_fn" not in result.stderr  # jsonargparse's wrapping is taken off


@pytest.mark.slow
def test_ten_classes_of_a_hundred_digit_pngs_train_past_80_percent_in_two_epochs(tmp_path):
    """The issue's bar: 10 x 100 real digit PNGs, one corrupt file and one text file among
    them, 2 epochs at 28x28 grey in both frameworks: validation accuracy over 80%, and
    ``predict`` on a digit PNG prints its class folder's name."""
    root = digit_folder(tmp_path / "digits", 100)
    cache, logs = tmp_path / "cache", tmp_path / "logs"
    shape = ("--data.image_size", "28", "--data.channels", "1", "--data.augment", "false")
    for framework in ("torch", "mlx"):
        result = cli("fit", "--config", "configs/folder.yaml", "--framework", framework,
                     "--data.data_dir", str(root), *shape, "--data.batch_size", "16",
                     "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
                     "--trainer.default_root_dir", str(logs), cache=cache)
        assert result.returncode == 0, result.stderr[-3000:]
        (run,) = [d for d in run_dirs(logs) if d.parent.name == framework]
        val_acc = read_scalars(run)["val/acc"][-1].value
        print(f"{framework}: val/acc {val_acc:.3f}")
        assert val_acc > 0.8
        image = root / "7" / "7_00000.png"
        result = cli("predict", "--config", "configs/folder.yaml", "--framework", framework,
                     "--data.data_dir", str(root), *shape, "--ckpt_path",
                     str(checkpoint(run, framework)), "--data.predict_files", f"[{image}]",
                     cache=cache)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"{image}  7 " in result.stdout


def test_bench_reads_a_folder_config(fitted, monkeypatch):
    from cnn.data.datamodule import DataModuleBase
    from cnn.tools import bench, bench_plan

    root, cache = fitted[0], fitted[1]
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    config = yaml.safe_load((ROOT / "configs" / "folder.yaml").read_text())
    config["data"].update(image_size=16, channels=1, eval_batch_size=2)
    # a batch the folder's training images can fill: bench holds fit's bound (issue 32)
    args = bench._parser().parse_args(["--config", "configs/folder.yaml", "--data-dir", str(root),
                                       "--batch-sizes", "8"])
    settings = bench_plan.read_settings(args, config)
    assert settings.spec.classes == tuple(CLASSES) and settings.spec.image_shape == (16, 16, 1)
    datamodule = DataModuleBase(**settings.datamodule_args(8))  # what each side's bench builds
    assert datamodule.spec.classes == settings.spec.classes
