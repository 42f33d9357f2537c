"""Nothing lost, no hang, no traceback: what a hostile user tries, on both frameworks.

Every case runs the real command line on tiny fits; the shared fit (``fits``) trains two epochs
at ``lr 0``, so the validation accuracy cannot improve after the first epoch: exactly the run
whose ``last`` checkpoint used to stay at epoch 0.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import resource
import shutil
import signal
from pathlib import Path

import pytest
import yaml

from cnn.errors import ConfigError, DataError
from cnn.weights import read_weights
from tests.cli.test_cli_errors import assert_one_line_error
from tests.cli_runs import run_cli, short_run

FRAMEWORKS = ("torch", "mlx")
SUFFIX = {"torch": ".ckpt", "mlx": ".safetensors"}
TINY = short_run(epochs=None, eval_batch_size=200)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def fit(framework: str, root: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("fit", "--framework", framework, *TINY, "--trainer.default_root_dir",
                   str(root), *args, env=env)


@pytest.fixture(scope="module")
def fits(tmp_path_factory) -> dict[str, Path]:
    """framework -> the run directory of a 2-epoch fit at lr 0 (val/acc never improves)."""
    runs = {}
    for framework in FRAMEWORKS:
        root = tmp_path_factory.mktemp(f"fit-{framework}")
        result = fit(framework, root, "--model.lr", "0", "--trainer.max_epochs", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        runs[framework] = root / "mnist" / framework / "version_0"
    return runs


def last_checkpoint(run: Path, framework: str) -> Path:
    return run / "checkpoints" / f"last{SUFFIX[framework]}"


# -- 1. `last` is the newest state ---------------------------------------------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_last_checkpoint_holds_the_newest_epoch_whatever_the_metric_did(fits, framework):
    last = read_weights(str(last_checkpoint(fits[framework], framework)))
    assert (last.epoch, last.global_step) == (1, 4)
    best = [p for p in (fits[framework] / "checkpoints").iterdir() if p.name.startswith("epoch=")
            and p.suffix == SUFFIX[framework]]
    assert [p.name for p in best] == [f"epoch=0-step=2{SUFFIX[framework]}"]  # it did not improve


# -- 2. one version directory per run ------------------------------------------------------------
def test_two_runs_that_ask_for_a_version_together_each_claim_their_own(tmp_path):
    from cnn.mx.lightning.loggers import TensorBoardLogger as MlxLogger

    from cnn.pt.run_files import TensorBoardLogger as TorchLogger

    for logger in (TorchLogger, MlxLogger):
        first, second = (logger(tmp_path, name=logger.__module__) for _ in range(2))
        # both choose before either writes a file: Lightning's listing gives both version_0
        assert (first.version, second.version) == (0, 1)
        assert Path(first.log_dir).is_dir() and Path(second.log_dir).is_dir()


# -- 3. convert never destroys its input ---------------------------------------------------------
def test_convert_refuses_its_own_input_and_an_existing_file_without_force(fits, tmp_path):
    source = tmp_path / "last.safetensors"
    shutil.copy(last_checkpoint(fits["mlx"], "mlx"), source)
    before = md5(source)
    assert_one_line_error(run_cli("convert", str(source), "--to", "torch", "--out", str(source)),
                          str(source), "being converted")
    assert md5(source) == before
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"keep me")
    assert_one_line_error(run_cli("convert", str(source), "--to", "torch", "--out", str(out)),
                          str(out), "--force")
    assert out.read_bytes() == b"keep me"
    assert run_cli("convert", str(source), "--to", "torch", "--out", str(out), "--force").returncode == 0
    assert read_weights(str(out)).global_step == 4


# -- 9, 7, 5. every value checked once, at parse time ---------------------------------------------
@pytest.mark.parametrize("key, value", [
    ("data.batch_size", 0), ("data.batch_size", -1), ("data.eval_batch_size", 0),
    ("data.val_fraction", 1), ("data.val_fraction", 1.5), ("model.dropout", 1.5),
    ("model.lr", -1.0), ("model.lr", float("nan")), ("model.weight_decay", -0.1),
    ("trainer.max_epochs", -5), ("trainer.max_steps", -2), ("trainer.log_every_n_steps", 0),
    ("trainer.limit_train_batches", -1), ("trainer.limit_val_batches", 1.5),
    ("trainer.check_val_every_n_epoch", 0), ("seed_everything", -3), ("seed_everything", 2**40),
    ("output", "predictions.txt"), ("output", "/"),
])
def test_every_value_out_of_range_names_its_key_value_and_range(key, value):
    section = {"seed_everything": 0, "model": {"lr": 1e-3}, "data": {"dataset": "mnist"},
               "trainer": {}}
    head, _, tail = key.rpartition(".")
    (section[head] if head else section)[tail] = value
    from cnn import limits

    with pytest.raises(ConfigError, match=rf"^{key} is .*; it must be "):
        limits.check_config(section)


@pytest.mark.parametrize("config", sorted((Path(__file__).parents[2] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_configs_pass_the_checks(config):
    from cnn import limits

    section = yaml.safe_load(config.read_text())
    limits.check_config(section)
    # and the checks read this file's values: each ranged one it sets, made nonsense, is refused by name
    ranged = [key for key in limits.RULES if lookup(section, key) is not None]
    assert {"seed_everything", "model.lr", "data.batch_size", "data.eval_batch_size",
            "trainer.max_epochs"} <= set(ranged)
    for key in ranged:
        broken = copy.deepcopy(section)
        head, _, tail = key.rpartition(".")
        (lookup(broken, head) if head else broken)[tail] = "nonsense"
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)} is 'nonsense'; it must be "):
            limits.check_config(broken)


def lookup(section: dict, key: str):
    """``section``'s value at the dotted ``key``, None where it sets none."""
    for part in key.split("."):
        section = section.get(part) if isinstance(section, dict) else None
    return section


@pytest.mark.parametrize("framework, args, words", [
    ("torch", ["--data.batch_size", "0"], ["data.batch_size is 0", ">= 1"]),
    ("mlx", ["--model.lr", "-1"], ["model.lr is -1.0", ">= 0"]),
])
def test_a_value_out_of_range_is_one_error_line_on_the_command_line(framework, args, words, tmp_path):
    assert_one_line_error(fit(framework, tmp_path, *args), *words)
    assert not any(tmp_path.iterdir())


def test_a_trainer_value_lightning_cannot_honour_is_one_error_line(tmp_path):
    assert_one_line_error(fit("torch", tmp_path, "--trainer.devices", "0"), "trainer:", "devices")
    assert not any(tmp_path.iterdir())


def test_a_batch_that_would_not_fit_in_memory_says_what_was_asked_and_what_fits():
    from cnn import limits

    section = {"data": {"dataset": "mnist", "batch_size": 50000}}
    with pytest.raises(ConfigError, match=r"data.batch_size is 50000: .* GiB .* at most \d+ fits"):
        limits.check_batch_fits_memory(section, memory=2**30)
    limits.check_batch_fits_memory({"data": {"dataset": "mnist", "batch_size": 128}}, memory=2**30)


# -- 5, 11. a batch larger than the data; a failed start leaves nothing ------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_batch_larger_than_the_data_is_refused_and_leaves_no_run_directory(framework, tmp_path):
    result = fit(framework, tmp_path, "--data.val_fraction", "0.9", "--data.batch_size", "10000")
    assert_one_line_error(result, "data.batch_size is 10000", "6000 training images")
    assert list(tmp_path.rglob("version_*")) == []


# -- 8. a named data location must exist -------------------------------------------------------
def test_a_data_dir_that_is_a_file_or_missing_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    from cnn.data.fetch import locate

    monkeypatch.delenv("CNN_DATA_DIR", raising=False)
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(DataError, match="data_dir .*file is not a directory"):
        locate("mnist", data_dir=afile)
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="CNN_DATA_DIR .*missing does not exist"):
        locate("mnist")


def test_a_missing_data_location_stops_the_command_line(tmp_path):
    result = fit("mlx", tmp_path / "runs", env={"CNN_DATA_DIR": str(tmp_path / "absent")})
    assert_one_line_error(result, "CNN_DATA_DIR", "does not exist")


# -- 6. one rule for a changed value on resume ---------------------------------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_resuming_with_a_changed_model_value_is_refused_and_changes_no_record(fits, framework):
    run = fits[framework]
    records = {p: md5(p) for p in run.rglob("*") if p.is_file()}
    result = fit(framework, run.parents[2], "--model.lr", "1e6", "--trainer.max_epochs", "3",
                 "--ckpt_path", str(last_checkpoint(run, framework)))
    assert_one_line_error(result, "model.lr 0.0 -> 1000000.0")
    assert {p: md5(p) for p in run.rglob("*") if p.is_file()} == records


class Hung(BaseException):
    """A command still running at its deadline (a BaseException: no handler of the CLI's takes it)."""


@contextlib.contextmanager
def failing_after(seconds: int):
    """Raise ``Hung`` in the block once ``seconds`` have passed, even inside a blocking open()."""
    def hung(signum, frame):
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- 4. predict reads regular files only ---------------------------------------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_predict_on_a_fifo_reports_it_instead_of_hanging(fits, framework, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with failing_after(120):
        result = run_cli("predict", "--framework", framework, "--config", "configs/mnist.yaml",
                         "--ckpt_path", str(last_checkpoint(fits[framework], framework)),
                         "--data.predict_files", f"[{fifo}, {tmp_path}]")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{fifo}" in result.stdout and "not a regular file" in result.stdout
    assert "a directory" in result.stdout


# -- 10. a write that fails -----------------------------------------------------------------------
@contextlib.contextmanager
def small_files():
    """Files of at most 1 MiB for this process while the block runs (Python ignores SIGXFSZ: a
    larger write fails with EFBIG); only the soft limit, so that it can be raised back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_checkpoint_that_cannot_be_written_is_one_line_and_the_previous_stays_whole(
        fits, framework, tmp_path):
    previous = tmp_path / f"last{SUFFIX[framework]}"
    shutil.copy(last_checkpoint(fits[framework], framework), previous)
    before = md5(previous)
    with small_files():
        result = fit(framework, tmp_path / "runs", "--model.lr", "0", "--trainer.max_epochs", "3",
                     "--ckpt_path", str(previous))
    assert_one_line_error(result, str(tmp_path / "runs"), SUFFIX[framework], "File too large")
    assert md5(previous) == before and read_weights(str(previous)).global_step == 4


def test_a_log_folder_that_cannot_be_created_is_one_line(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    assert_one_line_error(fit("mlx", afile / "logs"), str(afile), "Not a directory")
