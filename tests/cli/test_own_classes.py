"""``--model CLASS`` / ``--data CLASS`` (or ``class_path`` in a config), as LightningCLI's subclass
mode: a user's LightningModule and DataModule train through either framework's CLI with our
loggers, checkpoints and ``config.yaml``; our configs and our classes run as before; a wrong class
is one ``error:`` line."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from cnn.command_line import CommandLine
from cnn.config_translation import translate_args
from cnn.tools.events import read_scalars, run_dirs
from cnn.user_classes import named_class_paths
from tests.cli_runs import run_cli

FRAMEWORKS = ("torch", "mlx")
BORING = {"torch": ("tests.boring.TorchBoringModel", "tests.boring.TorchBoringData"),
          "mlx": ("tests.boring.MlxBoringModel", "tests.boring.MlxBoringData")}
SHORT = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.log_every_n_steps", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--data.batch_size", "32", "--data.eval_batch_size", "100")
CHECKPOINT_SUFFIX = {"torch": ".ckpt", "mlx": ".safetensors"}

# A user's image classifier per framework, without test_step, whose defaults differ from MNIST's shape,
# so the values it trains with show the links; each step checks the batch layout docs/models.md states.
USER_MODELS = textwrap.dedent('''
    import lightning.pytorch as pl
    import mlx.core as mx
    import mlx.nn as mnn
    import mlx.optimizers as moptim
    import torch

    from cnn.mx.lightning import LightningDataModule as MlxLightningDataModule
    from cnn.mx.lightning import LightningModule as MlxLightningModule


    class TinyTorchClassifier(pl.LightningModule):
        def __init__(self, in_channels: int = 3, image_size: int = 32, num_classes: int = 2, lr: float = 0.01):
            super().__init__()
            self.save_hyperparameters()
            self.fc = torch.nn.Linear(in_channels * image_size * image_size, num_classes)

        def forward(self, images):
            h = self.hparams
            assert images.shape[1:] == (h.in_channels, h.image_size, h.image_size), images.shape  # NCHW
            assert images.dtype == torch.uint8, images.dtype
            return self.fc(images.float().flatten(1) / 255)

        def training_step(self, batch, batch_idx):
            images, labels = batch
            assert labels.dtype == torch.int64, labels.dtype
            loss = torch.nn.functional.cross_entropy(self(images), labels)
            self.log("train/loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            images, labels = batch
            self.log("val/loss", torch.nn.functional.cross_entropy(self(images), labels))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


    class TinyMlxClassifier(MlxLightningModule):
        def __init__(self, in_channels: int = 3, image_size: int = 32, num_classes: int = 2, lr: float = 0.01):
            super().__init__()
            self.save_hyperparameters()
            self.fc = mnn.Linear(in_channels * image_size * image_size, num_classes)

        def __call__(self, images):
            h = self.hparams
            assert tuple(images.shape[1:]) == (h["image_size"], h["image_size"], h["in_channels"])  # NHWC
            assert images.dtype == mx.uint8, images.dtype
            return self.fc(images.astype(mx.float32).reshape(images.shape[0], -1) / 255)

        def training_step(self, batch, batch_idx):
            images, labels = batch
            assert labels.dtype == mx.int64, labels.dtype
            loss = mnn.losses.cross_entropy(self(images), labels, reduction="mean")
            self.log("train/loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            images, labels = batch
            self.log("val/loss", mnn.losses.cross_entropy(self(images), labels, reduction="mean"))

        def configure_optimizers(self):
            return moptim.SGD(learning_rate=self.hparams["lr"])


    def random_images(n_batches, seed, layout):
        """Batches of 8 random uint8 MNIST-shaped images in ``layout`` and int64 labels (numpy)."""
        import numpy as np

        rng = np.random.default_rng(seed)
        shape = (8, 1, 28, 28) if layout == "NCHW" else (8, 28, 28, 1)
        return Batches([(rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 10, 8, dtype=np.int64))
                        for _ in range(n_batches)])


    class Batches:
        """One loader of a list of batches (to Lightning, a list is one loader per element)."""

        def __init__(self, batches):
            self.batches = batches

        def __len__(self):
            return len(self.batches)

        def __iter__(self):
            return iter(self.batches)


    class TorchImages(pl.LightningDataModule):
        def __init__(self, batches: int = 2):
            super().__init__()
            self.batches = batches

        def loader(self, seed):
            return Batches([tuple(map(torch.from_numpy, b)) for b in random_images(self.batches, seed, "NCHW")])

        def train_dataloader(self):
            return self.loader(0)

        def val_dataloader(self):
            return self.loader(1)

        def test_dataloader(self):
            return self.loader(2)


    class MlxImages(MlxLightningDataModule):
        def __init__(self, batches: int = 2):
            super().__init__()
            self.batches = batches

        def train_dataloader(self):
            return random_images(self.batches, 0, "NHWC")

        def val_dataloader(self):
            return random_images(self.batches, 1, "NHWC")

        def test_dataloader(self):
            return random_images(self.batches, 2, "NHWC")
''')
USER_MODEL = {"torch": "user_models.TinyTorchClassifier", "mlx": "user_models.TinyMlxClassifier"}
USER_DATA = {"torch": "user_models.TorchImages", "mlx": "user_models.MlxImages"}


def translated(args: list[str], framework: str) -> list[str]:
    """``args`` as the config translation hands them to ``framework``'s parser."""
    return translate_args(CommandLine.read(args, framework), []).args()


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """A folder holding ``user_models.py``, importable by the CLI run in this process."""
    (tmp_path / "user_models.py").write_text(USER_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def the_run(logs, framework: str):
    (run,) = [d for d in run_dirs(logs) if d.parent.name == framework]
    return run


def test_the_class_each_section_names_is_read_from_options_and_config_files_the_last_one_winning(tmp_path):
    config = tmp_path / "own.yaml"
    config.write_text(yaml.safe_dump({"model": {"class_path": "a.Model", "init_args": {"lr": 0.1}},
                                      "data": "b.Data"}))
    assert named_class_paths(CommandLine.read(["fit", "--config", "configs/mnist.yaml"])) == {}
    named = named_class_paths(CommandLine.read(["fit", "--config", str(config)]))
    assert named == {"model": "a.Model", "data": "b.Data"}
    named = named_class_paths(CommandLine.read(["fit", "--config", str(config), "--model", "c.Other",
                                                "--model.lr", "1"]))
    assert named == {"model": "c.Other", "data": "b.Data"}
    assert named_class_paths(CommandLine.read(["fit", "--model=c.Other", f"--config={config}"]))["model"] == "a.Model"
    assert named_class_paths(CommandLine.read(["fit", "--data", '{"class_path": "d.Data"}'])) == {"data": "d.Data"}


def test_our_classes_named_for_the_other_side_become_this_sides_twins():
    assert translated(["fit", "--model", "cnn.pt.module.Classifier", "--data=cnn.pt.datamodule.DataModule"],
                      "mlx") == ["fit", "--model", "cnn.mx.module.Classifier", "--data", "cnn.mx.datamodule.DataModule"]
    assert translated(["fit", "--model", "mymods.MyModel"], "torch") == ["fit", "--model", "mymods.MyModel"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_users_model_and_data_train_with_our_logger_checkpoints_and_config(framework, tmp_path):
    model, data = BORING[framework]
    logs = tmp_path / "logs"
    result = run_cli("fit", "--framework", framework, "--model", model, "--data", data,
                     "--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "1",
                     "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(logs))
    assert result.returncode == 0, result.stderr[-3000:]
    run = the_run(logs, framework)
    assert run.parent.parent.name == data.rsplit(".", 1)[1]  # <root>/<data class>/<framework>/version_0
    assert {"train_loss", "val_loss", "test_loss"} <= set(read_scalars(run))
    suffix = CHECKPOINT_SUFFIX[framework]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"epoch=0-step=4{suffix}", f"last{suffix}"]
    assert "note: the default ModelCheckpoint keeps the newest and the last checkpoint" in result.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["class_path"] == model and saved["data"]["class_path"] == data

    again = run_cli("fit", "--framework", framework, "--config", str(run / "config.yaml"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert (run.parent / "version_1" / "checkpoints" / f"last{suffix}").is_file()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_print_config_shows_the_class_paths_and_the_class_arguments(framework):
    model, data = BORING[framework]
    result = run_cli("fit", "--framework", framework, "--model", model, "--data", data, "--print_config")
    assert result.returncode == 0, result.stderr[-3000:]
    printed = yaml.safe_load(result.stdout)
    assert printed["model"] == {"class_path": model} and printed["data"] == {"class_path": data}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_users_model_trains_on_our_data_with_the_datasets_shape_linked_in(framework, tmp_path, user_models):
    logs = tmp_path / "logs"
    result = run_cli("fit", "--framework", framework, "--config", "configs/mnist.yaml",
                     "--model", USER_MODEL[framework], "--model.lr", "0.05", *SHORT,
                     "--trainer.default_root_dir", str(logs))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: model: weight_decay, lr_schedule, dropout (from configs/mnist.yaml) are not arguments" \
        in result.stderr
    name = USER_MODEL[framework].rsplit(".", 1)[1]
    assert f"note: fit ends without its test: {name} has no test_step" in result.stderr
    run = the_run(logs, framework)
    assert run.parent.parent.name == "mnist"
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert (hparams["in_channels"], hparams["image_size"], hparams["num_classes"], hparams["lr"]) == (1, 28, 10, 0.05)
    assert {"train/loss", "val/loss"} <= set(read_scalars(run))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == {"class_path": USER_MODEL[framework], "init_args": {"lr": 0.05}}
    assert saved["data"]["dataset"] == "mnist"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_our_classifier_named_by_the_other_sides_class_path_runs_as_the_default(framework, tmp_path):
    other = {"torch": "cnn.mx.module.Classifier", "mlx": "cnn.pt.module.Classifier"}[framework]
    logs = tmp_path / "logs"
    result = run_cli("fit", "--framework", framework, "--config", "configs/mnist.yaml", "--model", other,
                     *SHORT, "--trainer.default_root_dir", str(logs))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note:" not in result.stderr
    run = the_run(logs, framework)
    suffix = CHECKPOINT_SUFFIX[framework]
    assert (run / "checkpoints" / f"epoch=0-step=2{suffix}.confusion.png").is_file()  # the best, tested
    assert {"train/loss", "train/acc", "val/acc", "test/acc"} <= set(read_scalars(run))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["class_path"] == f"cnn.{'pt' if framework == 'torch' else 'mx'}.module.Classifier"
    assert saved["model"]["init_args"]["lr"] == 0.002  # configs/mnist.yaml's


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_our_classifier_trains_on_a_users_data_without_its_statistics_or_train_sample(framework, tmp_path,
                                                                                      user_models):
    logs = tmp_path / "logs"
    result = run_cli("fit", "--framework", framework, "--data", USER_DATA[framework], "--data.batches", "3",
                     *SHORT[:-4], "--trainer.default_root_dir", str(logs))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note:" not in result.stderr
    run = the_run(logs, framework)
    assert run.parent.parent.name == USER_DATA[framework].rsplit(".", 1)[1]
    tags = set(read_scalars(run))
    assert {"train/loss", "val/acc", "test/acc"} <= tags and "train/acc" not in tags
    assert (run / "checkpoints" / f"epoch=0-step=2{CHECKPOINT_SUFFIX[framework]}.confusion.png").is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"] == {"class_path": USER_DATA[framework], "init_args": {"batches": 3}}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_our_classes_named_by_class_path_refuse_a_value_out_of_range_as_the_default_does(framework, tmp_path):
    for args, expected in ((("--model", "cnn.pt.module.Classifier", "--model.lr", "-1"),
                            "error: model.lr is -1.0; it must be a finite number >= 0"),
                           (("--data", "cnn.mx.datamodule.DataModule", "--data.batch_size", "0"),
                            "error: data.batch_size is 0; it must be an integer >= 1")):
        result = run_cli("fit", "--framework", framework, *args, "--trainer.default_root_dir", str(tmp_path))
        assert result.returncode != 0
        assert error_lines(result.stderr) == [expected]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_monitor_a_users_model_does_not_log_is_one_error_line(framework, tmp_path):
    model, data = BORING[framework]
    result = run_cli("fit", "--framework", framework, "--model", model, "--data", data,
                     "--trainer.callbacks", "EarlyStopping", "--trainer.callbacks.monitor", "val/acc",
                     "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path))
    assert result.returncode != 0
    (line,) = error_lines(result.stderr)
    assert "EarlyStopping(monitor='val/acc') names a metric the model does not log" in line and "val_loss" in line
    assert "train/loss" not in line  # what it logs comes from the user's model, not from our Classifiers
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("framework", "args", "expected"), [
    ("torch", ("--model", "collections.OrderedDict"),
     "error: model: collections.OrderedDict is not a LightningModule (a subclass of lightning."),
    ("mlx", ("--data", "collections.OrderedDict"),
     "error: data: collections.OrderedDict is not a LightningDataModule (a subclass of cnn.mx."),
    ("torch", ("--model", "tests.boring.MlxBoringModel"),
     "error: model: tests.boring.MlxBoringModel is written with mlx; torch needs a LightningModule written "
     "with torch: give one, or run with --framework mlx"),
    ("mlx", ("--data", "tests.boring.TorchBoringData"),
     "error: data: tests.boring.TorchBoringData is written with torch; mlx needs a LightningDataModule written "
     "with mlx: give one, or run with --framework torch"),
    ("torch", ("--data", "MyData"),
     "error: --data MyData: name the class with its module, e.g. mymodule.MyData, importable from here"),
    ("mlx", ("--model", "no_such_module.Model"),
     "error: model: no_such_module.Model cannot be imported: No module named 'no_such_module'"),
    ("torch", ("--model", "tests.boring.regression_data"),
     "error: model: tests.boring.regression_data is not a class; name a LightningModule class"),
])
def test_a_wrong_class_is_one_error_line(framework, args, expected, tmp_path):
    result = run_cli("fit", "--framework", framework, *args, "--trainer.default_root_dir", str(tmp_path))
    assert result.returncode != 0
    (line,) = error_lines(result.stderr)
    assert line.startswith(expected), line
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing was started

