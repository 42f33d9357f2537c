"""What a command imports before it does its work: the tools that need no trainer never load
Lightning (whose import alone takes seconds), however they are reached."""

from __future__ import annotations

import json
import subprocess
import sys

import lightning
import pytest
import torch

from cnn.pt.checkpoint import SafeCheckpointIO
from cnn.pt.module import Classifier
from tests.cli_runs import ROOT

HEAVY = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")


def modules_loaded_by(code: str) -> set[str]:
    """The ``sys.modules`` of a fresh interpreter (the project first on its path) after ``code``,
    which must leave ``rc`` set to 0."""
    script = f"{code}\nimport json, sys\nassert rc == 0, rc\nprint(json.dumps(sorted(sys.modules)))"
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


def test_the_fixture_checkpoint_is_torch_readable_as_written(lightning_checkpoint):
    # the conversions above start from a real file, not from an empty one
    state = torch.load(lightning_checkpoint, weights_only=True)["state_dict"]
    assert "net.conv1.weight" in state
