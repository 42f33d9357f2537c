"""``--model.net CLASS_PATH``: a user's network inside our Classifier, on both frameworks alike;
the project's networks named for the side that runs; the other framework's network refused in
one line."""

from __future__ import annotations

import os
import textwrap

import pytest
import yaml

from cnn.command_line import CommandLine
from cnn.config_translation import network_class_for, translate_args, translate_config
from cnn.errors import ConfigError
from tests.cli_runs import ROOT, run_cli

# A user's module with one tiny network per framework: a strided conv, global average pool, linear.
USER_NETS = textwrap.dedent('''
    import mlx.nn
    import torch


    class TinyMlxNet(mlx.nn.Module):
        def __init__(self, num_classes: int = 10, hidden: int = 8):
            super().__init__()
            self.conv = mlx.nn.Conv2d(1, hidden, 3, stride=2, padding=1)
            self.fc = mlx.nn.Linear(hidden, num_classes)

        def __call__(self, x):  # (N, H, W, C)
            x = mlx.nn.relu(self.conv(x)).mean(axis=(1, 2))
            return mlx.nn.log_softmax(self.fc(x), axis=1)


    class TinyTorchNet(torch.nn.Module):
        def __init__(self, num_classes: int = 10, hidden: int = 8):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, hidden, 3, stride=2, padding=1)
            self.fc = torch.nn.Linear(hidden, num_classes)

        def forward(self, x):  # (N, C, H, W)
            x = torch.relu(self.conv(x)).mean(dim=(2, 3))
            return torch.log_softmax(self.fc(x), dim=1)
''')
USER_NET = {"torch": "user_nets.TinyTorchNet", "mlx": "user_nets.TinyMlxNet"}
TINY = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--data.batch_size", "32", "--data.eval_batch_size", "100")


def translated(args: list[str], framework: str) -> list[str]:
    """``args`` as the config translation hands them to ``framework``'s parser."""
    return translate_args(CommandLine.read(args, framework), []).args()


@pytest.fixture
def user_nets(tmp_path, monkeypatch):
    """A folder holding ``user_nets.py``, importable here and by the CLI it starts."""
    (tmp_path / "user_nets.py").write_text(USER_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return {"env": {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}}


def test_the_projects_networks_are_named_for_the_side_that_runs():
    assert network_class_for("cnn.pt.resnet.ResNet", "mlx") == "cnn.mx.resnet.ResNet"
    assert network_class_for("cnn.mx.resnet.ResNet", "torch") == "cnn.pt.resnet.ResNet"
    assert network_class_for("cnn.pt.resnet.ResNet", "torch") == "cnn.pt.resnet.ResNet"
    config = {"model": {"lr": 0.1, "net": {"class_path": "cnn.pt.resnet.ResNet", "init_args": {"width": 8}}}}
    assert translate_config(config, "mlx", []) == {
        "model": {"lr": 0.1, "net": {"class_path": "cnn.mx.resnet.ResNet", "init_args": {"width": 8}}}}
    assert translated(["fit", "--model.net", "cnn.mx.resnet.ResNet", "--model.net.width", "8"], "torch") \
        == ["fit", "--model.net", "cnn.pt.resnet.ResNet", "--model.net.width", "8"]
    assert yaml.safe_load(translated(["--model.net", '{"class_path": "cnn.pt.resnet.ResNet"}'], "mlx")[1]) \
        == {"class_path": "cnn.mx.resnet.ResNet"}


def test_a_users_network_of_the_other_framework_is_refused_by_name(user_nets):
    assert network_class_for("user_nets.TinyMlxNet", "mlx") == "user_nets.TinyMlxNet"
    with pytest.raises(ConfigError, match=r"^model.net=user_nets.TinyTorchNet is written with torch; mlx needs"):
        network_class_for("user_nets.TinyTorchNet", "mlx")
    with pytest.raises(ConfigError, match=r"^model.net=user_nets.TinyMlxNet is written with mlx; torch needs"):
        network_class_for("user_nets.TinyMlxNet", "torch")
    assert network_class_for("no_such_module.Net", "mlx") == "no_such_module.Net"  # the parser says why


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_users_network_trains_inside_our_classifier_through_the_cli(tmp_path, user_nets, framework):
    logs = tmp_path / "logs"
    result = run_cli("--framework", framework, "fit", "--config", "configs/mnist.yaml", "--model.net",
                     USER_NET[framework], "--model.net.hidden", "4", "--trainer.default_root_dir", str(logs),
                     *TINY, **user_nets)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (logs / "mnist" / framework).glob("version_*")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["net"] == {"class_path": USER_NET[framework],
                                     "init_args": {"num_classes": 10, "hidden": 4}}
    (last,) = (run / "checkpoints").glob("last.*")
    if framework == "mlx":
        from safetensors import safe_open

        with safe_open(str(last), framework="numpy") as f:
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
        assert shapes["model.net.conv.weight"] == (4, 3, 3, 1)  # OHWI: MLX's own layout
    else:
        from cnn.weights import read_lightning_ckpt

        shapes = {k: tuple(v.shape) for k, v in read_lightning_ckpt(str(last))["state_dict"].items()}
        assert shapes["net.conv.weight"] == (4, 1, 3, 3)
    assert "test/acc" in result.stdout


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_the_other_frameworks_user_network_is_one_error_line(user_nets, framework):
    other = "mlx" if framework == "torch" else "torch"
    result = run_cli("--framework", framework, "fit", "--config", "configs/mnist.yaml", "--model.net",
                     USER_NET[other], "--print_config", **user_nets)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: model.net={USER_NET[other]} is written with {other}; {framework} needs a network written "
        f"with {framework}: give one, or run with --framework {other}"]


def test_mlx_help_names_the_network_option_without_listing_every_mlx_module():
    result = run_cli("--framework", "mlx", "fit", "--help")
    assert result.returncode == 0
    assert "--model.net" in result.stdout and "mlx.nn.Conv2d" not in result.stdout
