"""Bad inputs and faults end in one clear line, a non-zero exit and usable files, both sides.

Already covered elsewhere, not repeated here: bad options, keys, values and frameworks
(test_cli_errors.py); broken data files (test_data_*.py); a torch checkpoint that would run code,
a failed torch save, corrupt checkpoints read in-process and the cifar10 checkpoint with the
mnist config on the torch CLI (test_convert.py); a failed MLX save
(test_mx_trainer.py::test_checkpoint_round_trip_and_atomic_write).
"""

from __future__ import annotations

import ast
import csv
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx import checkpoint as mx_checkpoint

import lightning
import mlx.core as mx
import numpy as np
import pytest
import torch
from PIL import Image

from cnn.data import get_spec, load_dataset
from cnn.errors import CheckpointError
from cnn.pt.checkpoint import SafeCheckpointIO
from cnn.pt.module import Classifier as PtClassifier
from cnn.tools import convert
from cnn.tools.events import read_scalars, run_dirs
from tests.cli.test_cli_errors import assert_one_line_error
from tests.cli_runs import ROOT, CliResult, run_cli, short_run, wait_for

FRAMEWORKS = ["torch", "mlx"]
EXTENSION = {"torch": ".ckpt", "mlx": ".safetensors"}
MNIST = dict(in_channels=1, image_size=28, num_classes=10, classes=get_spec("mnist").classes)
QUIET = ["--trainer.enable_progress_bar", "false"]
TINY_FIT = [*short_run(train_batches=6, val_batches=2, test_batches=2, log_every=1, eval_batch_size=200,
                      val_fraction=0.01)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """An (untrained) mnist Classifier as each framework's checkpoint, written as fit would."""
    folder = tmp_path_factory.mktemp("checkpoints")
    model = PtClassifier(seed=3, **MNIST)
    torch_ckpt = folder / "mnist.ckpt"
    SafeCheckpointIO().save_checkpoint({
        "epoch": 0, "global_step": 0, "pytorch-lightning_version": lightning.__version__,
        "state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, torch_ckpt)
    mlx_ckpt = folder / "mnist.safetensors"
    convert.convert(str(torch_ckpt), "mlx", str(mlx_ckpt))
    return {"torch": torch_ckpt, "mlx": mlx_ckpt}


def predict(framework: str, ckpt, files, *args: str) -> CliResult:
    return run_cli("predict", "--framework", framework, "--config", "configs/mnist.yaml",
                   "--ckpt_path", str(ckpt), "--data.predict_files",
                   "[" + ",".join(map(str, files)) + "]", *QUIET, *args)


# ---------------------------------------------------------------------------------------------
# 1. Checkpoints that do not fit, or are damaged
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_checkpoint_of_another_dataset_is_one_line_naming_both(framework, checkpoints, tmp_path):
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32)).save(image)
    result = predict(framework, checkpoints[framework], [image], "--data.dataset", "cifar10")
    assert_one_line_error(result, f"checkpoint {checkpoints[framework]} was trained for "
                                  "mnist-shaped input (1x28x28, 10 classes); "
                                  "this config is cifar10 (3x32x32, 10 classes)")


def test_mlx_refuses_a_checkpoint_whose_classes_differ_though_every_shape_fits(checkpoints):
    from cnn.mx.module import Classifier as MxClassifier

    from cnn.errors import ConfigError

    model = MxClassifier(**{**MNIST, "classes": get_spec("fashion_mnist").classes})
    object.__setattr__(model, "_trainer", type("T", (), {"ckpt_path": "x", "datamodule": None})())
    with pytest.raises(ConfigError, match=r"trained for mnist-shaped input .* this config is "
                                          r"fashion_mnist \(1x28x28, 10 classes\)"):
        model.on_load_checkpoint(mx_checkpoint.load_checkpoint(checkpoints["mlx"]))


def damage(good: Path, how: str, folder: Path) -> Path:
    bad = folder / f"bad-{how.replace(' ', '-')}{good.suffix}"
    whole = good.read_bytes()
    if how == "truncated":
        bad.write_bytes(whole[:len(whole) // 2])
    elif how == "random bytes":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    elif how == "empty":
        bad.write_bytes(b"")
    elif how == "wrong tensor shape":  # hyper-parameters say mnist, a tensor says otherwise
        if good.suffix == ".ckpt":
            ckpt = torch.load(good, weights_only=True)
            ckpt["state_dict"]["net.fc3.weight"] = torch.zeros(7, 3)
            torch.save(ckpt, bad)
        else:
            ckpt = mx_checkpoint.load_checkpoint(good)
            ckpt["state_dict"]["net.fc3.weight"] = mx.zeros((7, 3))
            mx_checkpoint.save_checkpoint(bad, ckpt)
    return bad  # "missing": never written


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("how, words", [("truncated", ["corrupt or unreadable"]),
                                        ("wrong tensor shape", ["fc3.weight"])])
def test_a_damaged_checkpoint_is_one_line_through_the_cli(framework, how, words, checkpoints,
                                                          tmp_path):
    bad = damage(checkpoints[framework], how, tmp_path)
    image = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(image)
    assert_one_line_error(predict(framework, bad, [image]), str(bad), *words)


@pytest.mark.parametrize("how", ["truncated", "random bytes", "empty", "missing",
                                 "a torch checkpoint"])
def test_the_mlx_loader_names_every_damaged_checkpoint_in_one_line(how, checkpoints, tmp_path):
    bad = checkpoints["torch"] if how == "a torch checkpoint" else damage(
        checkpoints["mlx"], how, tmp_path)
    with pytest.raises(CheckpointError) as error:
        mx_checkpoint.load_checkpoint(bad)
    assert str(bad) in str(error.value) and "\n" not in str(error.value)
    if how == "a torch checkpoint":
        assert "python cli.py convert" in str(error.value)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_new_checkpoints_get_the_mode_of_any_new_file_not_0600(framework, checkpoints, tmp_path):
    old = os.umask(0o002)
    try:
        path = tmp_path / f"copy{EXTENSION[framework]}"
        if framework == "torch":
            SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
        else:
            mx_checkpoint.save_checkpoint(path, {"state_dict": {"w": mx.ones(2)}})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o664


# ---------------------------------------------------------------------------------------------
# 2. Training faults
NAN_CHECKPOINTS = """\
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {every_n_train_steps: 1, save_last: true, save_top_k: -1, save_on_exception: true}
"""


def load_any(framework: str, path: Path) -> dict:
    """A checkpoint as a dict: ``global_step`` and ``state_dict`` of numpy arrays."""
    if framework == "torch":
        ckpt = SafeCheckpointIO().load_checkpoint(path)
        return {**ckpt, "state_dict": {k: v.numpy() for k, v in ckpt["state_dict"].items()}}
    ckpt = mx_checkpoint.load_checkpoint(path)
    return {**ckpt, "state_dict": {k: np.array(v) for k, v in ckpt["state_dict"].items()}}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_diverging_loss_stops_fit_and_keeps_the_last_good_checkpoint(framework, tmp_path):
    """lr 1e30: the first Adam step moves every weight by ~1e29, the next forward overflows and
    the loss of step 1 is NaN, in both frameworks. Checkpoints are written every step and on
    exceptions; none may hold the NaN step."""
    config = tmp_path / "checkpoints.yaml"
    config.write_text(NAN_CHECKPOINTS)
    result = run_cli("fit", "--framework", framework, *TINY_FIT, "--config", str(config),
                     "--model.lr", "1e30", "--trainer.default_root_dir", str(tmp_path))
    assert_one_line_error(result, "training loss is nan at epoch 0, batch 1 (global step 1)",
                          "stopped without writing a checkpoint")
    (run,) = run_dirs(tmp_path)
    folder = run / "checkpoints"
    ext = EXTENSION[framework]
    assert sorted(p.name for p in folder.glob("*" + ext)) == [f"epoch=0-step=1{ext}", f"last{ext}"]
    last = load_any(framework, folder / f"last{ext}")
    assert last["global_step"] == 1
    assert all(np.isfinite(v).all() for v in last["state_dict"].values())
    assert read_scalars(run)["train/loss"][0].step == 0


# Full MNIST in batches of 32: 1688 batches an epoch, so the signal surely lands mid-training.
SIGNAL_FIT = ["--config", "configs/mnist.yaml", "--trainer.max_epochs", "3",
              "--data.batch_size", "32", "--trainer.limit_val_batches", "2",
              "--trainer.limit_test_batches", "2", "--trainer.log_every_n_steps", "1",
              "--data.eval_batch_size", "200", "--data.val_fraction", "0.01", *QUIET]


@pytest.mark.parametrize("framework, signum", [
    ("torch", signal.SIGINT), ("torch", signal.SIGTERM),
    ("mlx", signal.SIGINT), ("mlx", signal.SIGTERM)], ids=lambda v: getattr(v, "name", v))
def test_a_signal_during_fit_leaves_a_resumable_checkpoint_and_readable_logs(framework, signum,
                                                                            tmp_path):
    """Stopped from outside once training is under way: exit 128 + signum, one line naming the
    checkpoint to resume from, which loads; the logs read back. After SIGINT the run is resumed
    from that file for two more batches (after SIGTERM, test_resume.py resumes exactly)."""
    marker, config = tmp_path / "training", tmp_path / "mark.yaml"
    prefix = "Torch" if framework == "torch" else "Mlx"
    config.write_text(f"trainer:\n  callbacks:\n    - class_path: tests.signal_at_step."
                      f"{prefix}MarkAtStep\n      init_args: {{step: 3, path: {marker}}}\n")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "fit", "--framework", framework, *SIGNAL_FIT,
         "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "logs")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(marker, process)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, stderr[-3000:]
    result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
    assert_one_line_error(result, f"training interrupted by {signal.Signals(signum).name}",
                          "resume with --ckpt_path")
    ckpt = Path(stderr.strip().splitlines()[-1].rsplit(" ", 1)[-1])
    assert ckpt.name == "last" + EXTENSION[framework]
    step = load_any(framework, ckpt)["global_step"]
    assert 3 <= step < 1688
    (run,) = run_dirs(tmp_path / "logs")
    assert [s.step for s in read_scalars(run)["train/loss"]] == list(range(step))
    if signum != signal.SIGINT:
        return
    resumed = run_cli("fit", "--framework", framework, *SIGNAL_FIT, "--trainer.max_epochs", "1",
                      "--trainer.limit_train_batches", str(step + 2), "--ckpt_path", str(ckpt),
                      "--trainer.default_root_dir", str(tmp_path / "logs"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [s.step for s in read_scalars(run)["train/loss"]] == list(range(step + 2))


# ---------------------------------------------------------------------------------------------
# 4. predict: every unreadable file is named, the others are classified
def png_claiming(width: int, height: int) -> bytes:
    """A PNG header for a ``width`` x ``height`` grey image (the pixel data never follows)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_predict_names_each_bad_file_and_classifies_the_rest(framework, checkpoints, tmp_path):
    test = load_dataset("mnist").test
    good = []
    for i in range(2):
        good.append(tmp_path / f"digit{i}.png")
        Image.fromarray(test.images[i][:, :, 0]).save(good[-1])
    whole = good[0].read_bytes()
    bad = {"text.png": (b"just some text\n", "cannot read"), "empty.png": (b"", "it is empty"),
           "truncated.png": (whole[:len(whole) // 2], "cannot read"),
           "huge.png": (png_claiming(20_000, 20_000), "too large to decode safely")}
    for name, (data, _) in bad.items():
        (tmp_path / name).write_bytes(data)
    files = [good[0], *(tmp_path / name for name in bad), good[1]]
    out = tmp_path / "predictions.csv"
    result = predict(framework, checkpoints[framework], files, "--output", str(out),
                     "--trainer.default_root_dir", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "4 file(s) could not be classified" in result.stderr
    rows = {Path(r["file"]).name: r for r in csv.DictReader(out.open())}
    assert len(rows) == len(files)
    for path in good:
        assert rows[path.name]["class"] in MNIST["classes"] and not rows[path.name]["error"]
    for name, (_, words) in bad.items():
        error = rows[name]["error"]
        assert not rows[name]["class"] and words in error and name in error


# ---------------------------------------------------------------------------------------------
# 5. Loading never unpickles code
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "joblib", "shelve", "marshal"}
RESTRICTED_UNPICKLER = Path("cnn/data/cifar.py")  # its Unpickler subclass allows no globals


def unsafe_loads(source: str, path: Path) -> list[str]:
    """Calls in ``source`` that could unpickle code: ``torch.load`` without
    ``weights_only=True``, pickle-family ``load``/``loads``/``Unpickler``, ``numpy.load`` with
    ``allow_pickle=True``, and ``torch.load``/``pickle.load`` imported under other names."""
    tree, found = ast.parse(source), []
    aliases: dict[str, str] = {}  # local name -> dotted origin
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname or a.name: a.name for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module:
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})

    def dotted(expr) -> str:
        if isinstance(expr, ast.Name):
            return aliases.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            return f"{dotted(expr.value)}.{expr.attr}"
        return "?"

    for node in ast.walk(tree):
        target = node.func if isinstance(node, ast.Call) else (
            node.bases[0] if isinstance(node, ast.ClassDef) and node.bases else None)
        if target is None:
            continue
        name, where = dotted(target), f"{path}:{node.lineno}"
        module, _, attr = name.rpartition(".")
        keywords = {k.arg: k.value for k in getattr(node, "keywords", [])}

        def is_true(key: str, keywords: dict = keywords) -> bool:
            return isinstance(keywords.get(key), ast.Constant) and keywords[key].value is True

        if name == "torch.load" and not is_true("weights_only"):
            found.append(f"{where}: torch.load without weights_only=True")
        elif module in PICKLE_MODULES and attr in ("load", "loads", "Unpickler", "open"):
            if not (path == RESTRICTED_UNPICKLER and attr == "Unpickler"):
                found.append(f"{where}: {name}")
        elif name in ("numpy.load", "np.load") and is_true("allow_pickle"):
            found.append(f"{where}: numpy.load with allow_pickle=True")
    return found


def source_files() -> list[Path]:
    return sorted(p.relative_to(ROOT) for folder in ("cnn", "tests")
                  for p in (ROOT / folder).rglob("*.py")) + [Path("cli.py")]


def test_no_source_file_loads_a_checkpoint_or_pickle_unsafely():
    found = [hit for path in source_files()
             for hit in unsafe_loads((ROOT / path).read_text(), path)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("code", [
    "import torch\ntorch.load('x.ckpt')",
    "import torch\ntorch.load('x.ckpt', weights_only=False)",
    "from torch import load as l\nl('x.ckpt')",
    "import pickle as p\np.loads(b'')",
    "from pickle import Unpickler\nclass U(Unpickler): pass",
    "import numpy as np\nnp.load('x.npy', allow_pickle=True)"])
def test_the_source_scan_catches_each_unsafe_load(code):
    assert unsafe_loads(code, Path("cnn/example.py"))
    assert not unsafe_loads("import torch\ntorch.load('x.ckpt', weights_only=True)",
                            Path("cnn/example.py"))
