"""What a command imports before it does its work: the tools that need no trainer never load
Lightning (whose import alone takes seconds), however they are reached; an MLX command never
loads torch nor Lightning; a mistyped config path is told before any framework is loaded; a
command that writes no log does not load tensorboard; torch's OpenMP starts with the wait policy
the user set, none by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import lightning
import pytest
import torch

from cnn.pt.checkpoint import SafeCheckpointIO
from cnn.pt.module import Classifier
from tests.cli_runs import ROOT, short_run

HEAVY = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
FRAMEWORKS = ("torch", "mlx", "mlx.core", *HEAVY)


def modules_loaded_by(code: str, status: int = 0) -> set[str]:
    """The ``sys.modules`` of a fresh interpreter (the project first on its path) after ``code``,
    which must leave ``rc`` set to ``status``."""
    script = f"{code}\nimport json, sys\nassert rc == {status}, rc\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def lightning_checkpoint(tmp_path_factory):
    """A Lightning-shaped ``.ckpt`` of an untrained MNIST Classifier, as ``fit`` writes one."""
    model = Classifier(seed=3, classes=tuple(str(i) for i in range(10)))
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    SafeCheckpointIO().save_checkpoint({
        "epoch": 0, "global_step": 0, "pytorch-lightning_version": lightning.__version__,
        "state_dict": model.state_dict(), "optimizer_states": [], "lr_schedulers": [],
        "hyper_parameters": dict(model.hparams)}, path)
    return path


@pytest.fixture(scope="module")
def event_folder(tmp_path_factory):
    """A log folder with one run's TensorBoard events: two epochs of val/acc and a test/acc."""
    from torch.utils.tensorboard import SummaryWriter

    logs = tmp_path_factory.mktemp("logs")
    writer = SummaryWriter(str(logs / "torch" / "version_0"))
    for step, (epoch, accuracy) in enumerate([(0, 0.9), (1, 0.95)]):
        writer.add_scalar("epoch", epoch, step)
        writer.add_scalar("val/acc", accuracy, step)
    writer.add_scalar("test/acc", 0.96, 1)
    writer.close()
    return logs


def test_importing_the_tools_and_the_dispatcher_loads_no_lightning():
    loaded = modules_loaded_by("import cnn.cli, cnn.tools.convert, cnn.tools.plot\nrc = 0")
    assert {"cnn.cli", "cnn.tools.convert", "cnn.tools.plot"} <= loaded
    assert not loaded & set(HEAVY)


@pytest.mark.parametrize("to", ["torch", "mlx"])
def test_converting_a_lightning_checkpoint_loads_no_lightning(lightning_checkpoint, tmp_path, to):
    out = tmp_path / f"to_{to}.safetensors"
    loaded = modules_loaded_by("from cnn.cli import main\n"
                               f"rc = main(['convert', {str(lightning_checkpoint)!r}, '--to', {to!r}, "
                               f"'--out', {str(out)!r}])")
    assert out.is_file()
    assert "torch" in loaded  # it did read the .ckpt, with torch alone
    assert not loaded & set(HEAVY)


def test_plotting_a_log_folder_loads_no_lightning_nor_torch(event_folder, tmp_path):
    png = tmp_path / "curves.png"
    loaded = modules_loaded_by(f"from cnn.cli import main\nrc = main(['plot', {str(event_folder)!r}, "
                               f"'--out', {str(png)!r}])")
    assert png.stat().st_size > 0
    assert not loaded & set(HEAVY + ("torch",))


def main_call(*args: str) -> str:
    """Code that runs ``python cli.py ARGS`` through ``cnn.cli.main`` and leaves its exit status
    in ``rc`` (``--help`` ends in a ``SystemExit``)."""
    return (f"from cnn.cli import main\ntry:\n    rc = main({list(args)!r})\n"
            "except SystemExit as stop:\n    rc = stop.code")


@pytest.mark.parametrize("command", ["fit", "validate"])
def test_an_mlx_trainer_help_loads_neither_torch_nor_lightning(command):
    loaded = modules_loaded_by(main_call("--framework", "mlx", command, "--help"))
    assert {"cnn.mx.cli", "mlx.core"} <= loaded  # it did build the MLX parser
    assert not loaded & {"torch", *HEAVY}


def test_an_mlx_fit_loads_neither_torch_nor_lightning(shared_data, tmp_path):
    loaded = modules_loaded_by(main_call(
        "--framework", "mlx", "fit", *short_run(), "--data.data_dir", str(shared_data / "mnist"),
        "--trainer.default_root_dir", str(tmp_path)))
    assert list(tmp_path.rglob("last.safetensors"))  # it did train and checkpoint
    assert not loaded & {"torch", *HEAVY}


@pytest.mark.parametrize("framework", ["torch", "mlx"])
@pytest.mark.parametrize("config", [("--config", "no/such.yaml"), ("--config=no/such.yaml",)])
def test_a_missing_config_file_is_told_before_any_framework_is_loaded(framework, config):
    loaded = modules_loaded_by(main_call("--framework", framework, "fit", *config), status=1)
    assert "cnn.command_line" in loaded  # the command did read its command line (and so its config)
    assert not loaded & set(FRAMEWORKS)


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_trainer_help_loads_no_tensorboard(framework):
    loaded = modules_loaded_by(main_call("--framework", framework, "fit", "--help"))
    assert {"cnn.hparams", f"cnn.{'pt' if framework == 'torch' else 'mx'}.cli"} <= loaded
    assert not {m for m in loaded if m.split(".")[0] == "tensorboard"}


def wait_policy_torch_loads_with(code: str, policy: str | None) -> str | None:
    """``OMP_WAIT_POLICY`` as it was when ``import torch`` first ran in a fresh interpreter that
    runs ``code``, started with the variable set to ``policy`` (``None``: not set)."""
    # the spy prints the variable at torch's first import and ends the interpreter there: what
    # follows (torch's own import, the command) cannot change what torch's OpenMP started with
    spy = ("import json, os, sys\nclass TorchSpy:\n"
           "    def find_spec(self, name, path=None, target=None):\n"
           "        if name == 'torch':\n"
           "            print(json.dumps(os.environ.get('OMP_WAIT_POLICY')), flush=True)\n"
           "            os._exit(0)\n"
           "sys.meta_path.insert(0, TorchSpy())\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # conftest sets it
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    script = f"{spy}{code}\nraise SystemExit('torch was not imported')"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [main_call("fit", "--help"), "import cnn.tools.bench_torch"],
                         ids=["fit", "bench"])
def test_torch_loads_openmp_with_the_wait_policy_the_user_gave_none_by_default(code):
    # spinning (OpenMP's default) is a third faster for a fit on cores of its own: docs/performance.md
    assert wait_policy_torch_loads_with(code, None) is None


def test_a_wait_policy_the_user_set_is_kept():
    assert wait_policy_torch_loads_with(main_call("fit", "--help"), "ACTIVE") == "ACTIVE"


def test_the_fixture_checkpoint_is_torch_readable_as_written(lightning_checkpoint):
    # the conversions above start from a real file, not from an empty one
    state = torch.load(lightning_checkpoint, weights_only=True)["state_dict"]
    assert "net.conv1.weight" in state
