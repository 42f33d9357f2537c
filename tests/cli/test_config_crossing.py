"""One config, both frameworks: what either side prints (``fit --print_config``) or saves in its run
folder (``config.yaml``) runs unchanged on the other, Lightning's class paths included, and every
logger Lightning ships gets through ``fit`` and its test on both sides (here CSVLogger; TensorBoard in
``test_both_clis``).

One chain of tiny fits, each starting from the config the previous side wrote: MLX prints -> torch
fits it -> MLX fits torch's config.yaml. Each side's config.yaml is what that side's
``--print_config`` prints for the same command line, so the chain also covers "torch prints, MLX
fits"; the two fits that remain (torch fits MLX's config.yaml, MLX fits torch's print) are slow
tests, and by default torch only parses MLX's config.yaml. All runs log with CSVLogger into one folder.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import yaml

from tests.cli_runs import ROOT, run_cli, short_run

TINY = (*short_run(config=None, batch_size=32, eval_batch_size=100), "--trainer.num_sanity_val_steps", "0",
        "--trainer.enable_model_summary", "false")
# Lightning's class paths, typed on the command line of both sides.
LIGHTNING_CLASSES = ("--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
                     "--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping",
                     "--trainer.callbacks.monitor", "val/acc", "--trainer.callbacks.mode", "max")


def printed(framework: str, *args: str) -> str:
    """What ``fit ARGS --print_config`` prints on ``framework``."""
    result = run_cli("--framework", framework, "fit", *args, "--print_config")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def without_header(text: str) -> str:
    """The YAML without the ``# lightning.pytorch==...`` line torch's print starts with."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def fit_with(framework: str, config: Path, folder: Path) -> Path:
    """``fit --config CONFIG`` and nothing else, run in ``folder``; the new run's directory."""
    runs = folder / "logs" / "lightning_logs"
    before = set(runs.glob("version_*"))
    result = run_cli("--framework", framework, "fit", "--config", str(config), cwd=folder)
    assert result.returncode == 0, f"{framework} with {config.name}: {result.stderr[-3000:]}"
    (run,) = set(runs.glob("version_*")) - before
    return run


def read_csv(run: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run / "metrics.csv", newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)


def assert_logs_one_tiny_fit_and_its_test(run: Path) -> None:
    """``run``'s metrics.csv holds what Lightning's CSVLogger writes for one TINY fit (one epoch of two
    batches, steps 0 and 1) and its test: its columns, the epoch's validation and train accuracy at the
    epoch's last step, and the test's figures at the fit's global step, each a value it can be."""
    header, rows = read_csv(run)
    classes = [f"test/acc_class/{c}" for c in range(10)]
    assert header == sorted(["epoch", "step", "train/acc", "val/acc", "val/loss", "test/acc", "test/loss", *classes])

    def logged(column: str) -> list[tuple[str, str, float]]:
        return [(row["epoch"], row["step"], float(row[column])) for row in rows if row[column]]

    for column in ("val/acc", "val/loss", "train/acc"):
        (point,) = logged(column)
        assert point[:2] == ("0", "1"), column
    for column in ("test/acc", "test/loss", *classes):
        (point,) = logged(column)
        assert point[1] == "2", column
    accuracies = [value for column in ("val/acc", "train/acc", "test/acc", *classes) for _, _, value in logged(column)]
    assert all(0 <= value <= 1 for value in accuracies)
    assert all(0 <= value < math.inf for column in ("val/loss", "test/loss") for _, _, value in logged(column))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crossing")
    mlx_printed = folder / "mlx_printed.yaml"
    mlx_printed.write_text(printed("mlx", "--config", "configs/mnist.yaml", *TINY, *LIGHTNING_CLASSES,
                                   "--trainer.logger.save_dir", str(folder / "logs")))
    torch_run = fit_with("torch", mlx_printed, folder)
    mlx_run = fit_with("mlx", torch_run / "config.yaml", folder)
    return {"folder": folder, "mlx_printed": mlx_printed, "torch_run": torch_run, "mlx_run": mlx_run,
            "torch_printed": printed("torch", "--config", str(mlx_printed))}


def test_a_config_mlx_printed_fits_on_torch_with_lightnings_csv_logger(chain):
    assert_logs_one_tiny_fit_and_its_test(chain["torch_run"])
    assert list((chain["torch_run"] / "checkpoints").glob("epoch=*.ckpt"))


def test_torchs_config_yaml_fits_on_mlx(chain):
    assert_logs_one_tiny_fit_and_its_test(chain["mlx_run"])
    assert list((chain["mlx_run"] / "checkpoints").glob("epoch=*.safetensors"))


def test_each_sides_config_yaml_is_what_its_print_config_prints(chain):
    assert without_header(chain["torch_printed"]) == without_header((chain["torch_run"] / "config.yaml").read_text())
    mlx_printed = printed("mlx", "--config", str(chain["torch_run"] / "config.yaml"))
    assert mlx_printed.strip() == (chain["mlx_run"] / "config.yaml").read_text().strip()


def test_mlx_writes_config_yaml_in_its_run_folder_like_lightning(chain):
    saved = yaml.safe_load((chain["mlx_run"] / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == 1 and saved["data"]["dataset"] == "mnist"


def test_a_run_without_a_logger_has_no_run_folder_and_writes_no_config_yaml(tmp_path):
    result = run_cli("--framework", "mlx", "test", "--ckpt_path", "untrained",
                     "--config", str(ROOT / "configs/mnist.yaml"),
                     "--trainer.logger", "false", "--trainer.limit_test_batches", "1",
                     "--data.eval_batch_size", "100", "--trainer.enable_progress_bar", "false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not list(tmp_path.rglob("config.yaml"))


def test_mlxs_config_yaml_parses_on_torch_and_an_mlx_only_setting_is_ignored_with_a_one_line_note(chain):
    result = run_cli("fit", "--config", str(chain["mlx_run"] / "config.yaml"), "--trainer.compile", "true",
                     "--print_config")
    assert result.returncode == 0, result.stderr[-3000:]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: trainer.compile=True is mlx only; ignored by torch"]  # False is the default
    config = yaml.safe_load(result.stdout)
    assert "compile" not in config["trainer"]
    assert config["trainer"]["logger"]["class_path"] == "lightning.pytorch.loggers.CSVLogger"


@pytest.mark.slow
def test_mlxs_config_yaml_fits_on_torch(chain):
    run = fit_with("torch", chain["mlx_run"] / "config.yaml", chain["folder"])
    assert_logs_one_tiny_fit_and_its_test(run)


@pytest.mark.slow
def test_a_config_torch_printed_fits_on_mlx(chain):
    folder = chain["folder"]
    config = folder / "torch_printed.yaml"
    config.write_text(printed("torch", "--config", "configs/mnist.yaml", *TINY, *LIGHTNING_CLASSES,
                              "--trainer.logger.save_dir", str(folder / "logs")))
    assert_logs_one_tiny_fit_and_its_test(fit_with("mlx", config, folder))


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


def test_a_torch_network_in_model_net_is_refused_on_mlx_in_one_line(tmp_path):
    config = tmp_path / "net.yaml"
    config.write_text("model:\n  net:\n    class_path: torch.nn.Linear\n")
    result = run_cli("--framework", "mlx", "fit", "--config", str(config), "--print_config")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: model.net=torch.nn.Linear is written with torch; mlx needs a network written with mlx: "
        "give one, or run with --framework torch"]


def test_a_lightning_class_without_an_mlx_mirror_is_one_error_line():
    result = run_cli("--framework", "mlx", "fit", "--config", "configs/mnist.yaml",
                     "--trainer.callbacks+=lightning.pytorch.callbacks.BatchSizeFinder", "--print_config")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: lightning.pytorch.callbacks.BatchSizeFinder has no MLX mirror; remove it or run with "
        "--framework torch"]


def test_a_torch_config_for_mlx_names_the_mirrors_and_leaves_out_what_mlx_does_itself():
    from cnn.config_translation import translate_config

    torch_config = {
        "seed_everything": 1, "weights_only": None,
        "trainer": {"precision": None, "model_registry": None,
                    "plugins": [{"class_path": "cnn.pt.checkpoint.SafeCheckpointIO"}],
                    "callbacks": [{"class_path": "cnn.pt.callbacks.FaultGuard"},
                                  {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                   "init_args": {"monitor": "val/acc", "train_time_interval": None}},
                                  {"class_path": "lightning.pytorch.callbacks.StochasticWeightAveraging",
                                   "init_args": {"swa_lrs": 0.01, "device": "Unable to serialize instance cpu"}},
                                  {"class_path": "lightning.pytorch.callbacks.EarlyStopping",
                                   "init_args": {"monitor": "val/acc", "log_rank_zero_only": True}},
                                  {"class_path": "lightning.pytorch.callbacks.TQDMProgressBar",
                                   "init_args": {"process_position": 1}}]},
        "model": {"lr": 0.1, "net": None}}
    notes: list[str] = []
    assert translate_config(torch_config, "mlx", notes) == {
        "seed_everything": 1,
        "trainer": {"plugins": [],
                    "callbacks": [{"class_path": "cnn.mx.lightning.ModelCheckpoint",
                                   "init_args": {"monitor": "val/acc", "train_time_interval": None}},
                                  {"class_path": "cnn.mx.lightning.StochasticWeightAveraging",
                                   "init_args": {"swa_lrs": 0.01, "device": "cpu"}},
                                  {"class_path": "cnn.mx.lightning.EarlyStopping",
                                   "init_args": {"monitor": "val/acc", "log_rank_zero_only": True}},
                                  {"class_path": "cnn.mx.lightning.TQDMProgressBar", "init_args": {}}]},
        "model": {"lr": 0.1, "net": None}}  # both sides have model.net
    assert notes == ["TQDMProgressBar(process_position=1) has no mlx counterpart; ignored"]


def test_an_mlx_config_for_torch_names_lightnings_classes():
    from cnn.config_translation import translate_config

    mlx_config = {"trainer": {"compile": False, "plugins": None,
                              "logger": {"class_path": "cnn.mx.lightning.csv_logs.CSVLogger",
                                         "init_args": {"save_dir": "runs"}},
                              "callbacks": ["cnn.mx.lightning.callbacks.LearningRateMonitor"]}}
    notes: list[str] = []
    assert translate_config(mlx_config, "torch", notes) == {"trainer": {  # plugins: null is each side's default
        "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs"}},
        "callbacks": ["lightning.pytorch.callbacks.LearningRateMonitor"]}}
    assert notes == []


def test_the_keys_only_one_side_has_are_the_ones_crossing_leaves_out(chain):
    from cnn.command_line import ONLY_ON

    def keys(text: str) -> set[str]:
        return {f"{s}.{k}" if isinstance(v, dict) else s for s, v in yaml.safe_load(text).items()
                for k in (v if isinstance(v, dict) else [None])}

    torch_keys, mlx_keys = keys(chain["torch_printed"]), keys(chain["mlx_printed"].read_text())
    assert torch_keys - mlx_keys == set(ONLY_ON["torch"])
    assert mlx_keys - torch_keys == set(ONLY_ON["mlx"])


def test_every_mirrored_lightning_class_exists_on_both_sides():
    import cnn.mx.lightning

    import lightning.pytorch.callbacks
    import lightning.pytorch.loggers

    from cnn.config_translation import MIRRORED

    for kind, names in MIRRORED.items():
        lightning_module = getattr(lightning.pytorch, kind)
        for name in names:
            assert hasattr(lightning_module, name) and hasattr(cnn.mx.lightning, name), name


@pytest.fixture(scope="module")
def fit_help() -> dict[str, str]:
    helps = {}
    for framework in ("torch", "mlx"):
        result = run_cli("--framework", framework, "fit", "--help")
        assert result.returncode == 0, result.stderr[-2000:]
        helps[framework] = result.stdout
    return helps


def test_both_frameworks_help_has_the_same_sections_in_the_same_order(fit_help):
    def sections(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and line[0].isalpha() and line.endswith(":")
                and not line.startswith("usage")]

    assert sections(fit_help["torch"]) == sections(fit_help["mlx"])
    assert [s.split(":")[0] for s in sections(fit_help["torch"])] == ["options", "Trainer", "Model", "Data",
                                                                      "Linked arguments", "Optimizer",
                                                                      "LR scheduler", "Run"]


def test_torch_help_names_the_network_option_without_listing_every_torch_module(fit_help):
    assert "--model.net" in fit_help["torch"]
    assert "torch.ao.nn" not in fit_help["torch"] and "torch.nn.Conv2d" not in fit_help["torch"]


def test_the_two_frameworks_confusion_pictures_of_one_checkpoint_name_do_not_overwrite_each_other():
    # without a logger both sides write epoch=E-step=S checkpoints into one checkpoints/ folder
    from cnn.metrics import confusion_png_path

    torch_png = confusion_png_path("runs/checkpoints/epoch=0-step=3.ckpt", None)
    mlx_png = confusion_png_path("runs/checkpoints/epoch=0-step=3.safetensors", None)
    assert torch_png != mlx_png
    assert torch_png.parent == mlx_png.parent == Path("runs/checkpoints")


def test_each_config_file_is_read_once_however_many_steps_ask_for_its_sections(tmp_path, monkeypatch):
    from cnn.command_line import CommandLine
    from cnn.config_translation import translate_args
    from cnn.user_classes import named_class_paths

    config = tmp_path / "own.yaml"
    config.write_text("model:\n  class_path: a.Model\ntrainer:\n  compile: true\n")
    reads: list[str] = []
    read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: reads.append(str(self)) or read_text(self, *a, **k))
    line = CommandLine.read(["fit", "--config", str(config)], "torch")
    translate_args(line, [])
    assert named_class_paths(line) == {"model": "a.Model"}
    assert yaml.safe_load(line.args()[2]) == {"model": {"class_path": "a.Model"}, "trainer": {}}
    assert reads == [str(config)]
