"""One config, both frameworks: what either side prints (``fit --print_config``) or saves in its run
folder (``config.yaml``) runs unchanged on the other, Lightning's class paths included, and every
logger Lightning ships gets through ``fit`` and its test on both sides (here CSVLogger; TensorBoard in
``test_both_clis``).

One chain of tiny fits, each starting from the config the previous side wrote:
MLX prints -> torch fits it -> MLX fits torch's config.yaml -> torch fits MLX's config.yaml (slow; by
default torch only parses it); and torch prints -> MLX fits it. All runs log with CSVLogger into one
folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from tests.cli_runs import run_cli

TINY = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "1", "--trainer.num_sanity_val_steps", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--data.batch_size", "32", "--data.eval_batch_size", "100")
# Lightning's class paths, typed on the command line of both sides.
LIGHTNING_CLASSES = ("--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
                     "--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping",
                     "--trainer.callbacks.monitor", "val/acc", "--trainer.callbacks.mode", "max")


def framework_args(framework: str) -> tuple[str, ...]:
    return ("--framework", framework)


def print_config(framework: str, folder: Path) -> Path:
    result = run_cli(*framework_args(framework), "fit", "--config", "configs/mnist.yaml", *TINY,
                     *LIGHTNING_CLASSES, "--trainer.logger.save_dir", str(folder / "logs"), "--print_config")
    assert result.returncode == 0, result.stderr[-3000:]
    path = folder / f"{framework}_printed.yaml"
    path.write_text(result.stdout)
    return path


def fit_with(framework: str, config: Path, folder: Path) -> Path:
    """``fit --config CONFIG`` and nothing else, run in ``folder``; the new run's directory."""
    runs = folder / "logs" / "lightning_logs"
    before = set(runs.glob("version_*"))
    result = run_cli(*framework_args(framework), "fit", "--config", str(config), cwd=folder)
    assert result.returncode == 0, f"{framework} with {config.name}: {result.stderr[-3000:]}"
    (run,) = set(runs.glob("version_*")) - before
    return run


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crossing")
    mlx_printed = print_config("mlx", folder)
    torch_run = fit_with("torch", mlx_printed, folder)
    mlx_run = fit_with("mlx", torch_run / "config.yaml", folder)
    return {"folder": folder, "mlx_printed": mlx_printed, "torch_run": torch_run, "mlx_run": mlx_run}


def test_a_config_mlx_printed_fits_on_torch_with_lightnings_csv_logger(chain):
    assert (chain["torch_run"] / "metrics.csv").is_file()
    assert list((chain["torch_run"] / "checkpoints").glob("epoch=*.ckpt"))


def test_torchs_config_yaml_fits_on_mlx(chain):
    assert (chain["mlx_run"] / "metrics.csv").is_file()
    assert list((chain["mlx_run"] / "checkpoints").glob("epoch=*.safetensors"))


def test_mlxs_config_yaml_is_a_valid_torch_config(chain):
    result = run_cli("fit", "--config", str(chain["mlx_run"] / "config.yaml"), "--print_config")
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load(result.stdout)["trainer"]["logger"]["class_path"] == "lightning.pytorch.loggers.CSVLogger"


@pytest.mark.slow
def test_mlxs_config_yaml_fits_on_torch(chain):
    run = fit_with("torch", chain["mlx_run"] / "config.yaml", chain["folder"])
    assert (run / "metrics.csv").is_file()


def test_mlx_writes_config_yaml_in_its_run_folder_like_lightning(chain):
    saved = yaml.safe_load((chain["mlx_run"] / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == 1 and saved["data"]["dataset"] == "mnist"


def test_a_config_torch_printed_fits_on_mlx(chain):
    folder = chain["folder"]
    run = fit_with("mlx", print_config("torch", folder), folder)
    assert (run / "metrics.csv").is_file()


def read_csv(run: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run / "metrics.csv", newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)


def test_csv_logger_writes_lightnings_metrics_csv_on_both_frameworks_through_fit_and_test(chain):
    torch_header, torch_rows = read_csv(chain["torch_run"])
    mlx_header, mlx_rows = read_csv(chain["mlx_run"])
    assert mlx_header == torch_header == sorted(torch_header)
    assert {"step", "epoch", "val/acc", "train/acc", "test/acc", "test/loss"} <= set(torch_header)
    assert any(row["test/acc"] for row in mlx_rows) and any(row["test/acc"] for row in torch_rows)
    for run in ("torch_run", "mlx_run"):
        hparams = yaml.safe_load((chain[run] / "hparams.yaml").read_text())
        assert hparams["lr"] == 0.002, run


def test_the_lightning_callback_typed_on_the_mlx_command_line_is_in_its_printed_config(chain):
    printed = yaml.safe_load(chain["mlx_printed"].read_text())
    (callback,) = printed["trainer"]["callbacks"]
    assert callback["class_path"].endswith(".EarlyStopping") and callback["init_args"]["monitor"] == "val/acc"
    assert printed["trainer"]["logger"]["class_path"].endswith(".CSVLogger")


def test_an_mlx_only_setting_on_torch_is_ignored_with_a_one_line_note():
    result = run_cli("fit", "--config", "configs/mnist.yaml", "--trainer.compile", "false", "--print_config")
    assert result.returncode == 0, result.stderr[-2000:]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: trainer.compile=False is mlx only; ignored by torch"]
    assert "compile" not in yaml.safe_load(result.stdout)["trainer"]


def test_a_torch_network_in_model_net_is_refused_on_mlx_in_one_line(tmp_path):
    config = tmp_path / "net.yaml"
    config.write_text("model:\n  net:\n    class_path: torch.nn.Linear\n")
    result = run_cli("--framework", "mlx", "fit", "--config", str(config), "--print_config")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: model.net={'class_path': 'torch.nn.Linear'} is torch only: mlx cannot build it; "
        "remove it or run with --framework torch"]


def test_a_lightning_class_without_an_mlx_mirror_is_one_error_line():
    result = run_cli("--framework", "mlx", "fit", "--config", "configs/mnist.yaml",
                     "--trainer.callbacks+=lightning.pytorch.callbacks.BatchSizeFinder", "--print_config")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: lightning.pytorch.callbacks.BatchSizeFinder has no MLX mirror; remove it or run with "
        "--framework torch"]


def test_the_keys_only_one_side_has_are_the_ones_crossing_leaves_out(chain, tmp_path):
    from cnn.crossing import ONLY_ON

    def keys(path: Path) -> set[str]:
        config = yaml.safe_load(path.read_text())
        return {f"{s}.{k}" if isinstance(v, dict) else s for s, v in config.items()
                for k in (v if isinstance(v, dict) else [None])}

    torch_keys = keys(print_config("torch", tmp_path))
    mlx_keys = keys(chain["mlx_printed"])
    assert torch_keys - mlx_keys == set(ONLY_ON["torch"])
    assert mlx_keys - torch_keys == set(ONLY_ON["mlx"])


def test_every_mirrored_lightning_class_exists_on_both_sides():
    import cnn.mx.lightning

    import lightning.pytorch.callbacks
    import lightning.pytorch.loggers

    from cnn.crossing import MIRRORED

    for kind, names in MIRRORED.items():
        lightning_module = getattr(lightning.pytorch, kind)
        for name in names:
            assert hasattr(lightning_module, name) and hasattr(cnn.mx.lightning, name), name


def test_both_frameworks_help_has_the_same_sections_in_the_same_order():
    def sections(*framework: str) -> list[str]:
        result = run_cli(*framework, "fit", "--help")
        assert result.returncode == 0, result.stderr[-2000:]
        return [line for line in result.stdout.splitlines() if line and line[0].isalpha() and line.endswith(":")
                and not line.startswith("usage")]

    torch_sections, mlx_sections = sections(), sections("--framework", "mlx")
    assert torch_sections == mlx_sections
    assert [s.split(":")[0] for s in torch_sections] == ["options", "Trainer", "Model", "Data",
                                                         "Linked arguments", "Run"]


def test_torch_help_names_the_network_option_without_listing_every_torch_module():
    result = run_cli("fit", "--help")
    assert "--model.net" in result.stdout
    assert "torch.ao.nn" not in result.stdout and "known subclasses: torch.nn" not in result.stdout


def test_the_two_frameworks_confusion_pictures_of_one_checkpoint_name_do_not_overwrite_each_other():
    # without a logger both sides write epoch=E-step=S checkpoints into one checkpoints/ folder
    from cnn.metrics import confusion_png_path

    torch_png = confusion_png_path("runs/checkpoints/epoch=0-step=3.ckpt", None)
    mlx_png = confusion_png_path("runs/checkpoints/epoch=0-step=3.safetensors", None)
    assert torch_png != mlx_png
    assert torch_png.parent == mlx_png.parent == Path("runs/checkpoints")
