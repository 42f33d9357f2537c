"""Bounds that hold past the config file, and one line for each mistake (issue 32, items 8-16).

Every YAML the program parses (a config, a command-line value, a run folder's hparams.yaml) and
every checkpoint's non-weight fields are bounded once shared values are followed; bench holds
fit's batch bounds; class folders are checked in linear work; a FIFO where a file is read is
"not a regular file" at once; empty and piped configs, an --out under a file and plot of a file
each end in one line. A memory bomb runs in a process of its own under ``RLIMIT_AS``, so that a
regression fails there instead of eating the machine.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cnn import bounded_yaml
from cnn.command_line import CommandLine
from cnn.errors import ConfigError
from cnn.user_files import NotRegularFile, open_regular
from tests.cli.test_cli_errors import assert_one_line_error
from tests.cli_runs import ROOT, run_cli, run_cli_process, short_run

FRAMEWORKS = ("torch", "mlx")
TINY = short_run(train_batches=2, val_batches=1, test_batches=1, batch_size=32, eval_batch_size=200)
# enough for either framework's start, far below what an expanded bomb asks for
ADDRESS_SPACE = 8 << 30


def _bounded_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def bounded_process(*args: str, timeout: int = 180):
    """``python cli.py ARGS`` in a process that cannot take more than ``ADDRESS_SPACE``."""
    return run_cli_process(*args, timeout=timeout, preexec_fn=_bounded_memory)


def nested_aliases(levels: int = 7) -> str:
    """A flow-style YAML value of a few hundred characters that expands to 10^levels values."""
    anchors = ["&a0 [1,1,1,1,1,1,1,1,1,1]"]
    anchors += [f"&a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return f"[{','.join(anchors)}]"


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.ckpt"
    os.mkfifo(path)
    return path


# --- 9: one YAML bound -------------------------------------------------------------------------

def test_a_yaml_value_of_nested_aliases_is_refused_without_being_expanded():
    with pytest.raises(ConfigError, match="expands to more than"):
        bounded_yaml.load_yaml(nested_aliases(), "--x")


def test_jsonargparse_loads_every_yaml_value_through_the_bound():
    from jsonargparse import get_loader
    from jsonargparse._loaders_dumpers import json_or_yaml_load

    bounded_yaml.bound_parser_yaml()
    bounded_yaml.bound_parser_yaml()  # twice: still one bound, not two
    assert get_loader("yaml")("[1, 2]") == [1, 2]
    for load in (get_loader("yaml"), json_or_yaml_load):
        with pytest.raises(ConfigError, match="expands to more than"):
            load(nested_aliases())


# Each a process of its own, under a memory bound; a torch one takes seconds to start, so the
# default run checks torch with one key (the same parser reads them all).
@pytest.mark.parametrize("framework, key", [
    *(("mlx", key) for key in ("--trainer.max_epochs", "--data.predict_files", "--trainer.callbacks")),
    ("torch", "--trainer.callbacks"),
    *(pytest.param("torch", key, marks=pytest.mark.slow) for key in ("--trainer.max_epochs", "--data.predict_files"))])
def test_a_command_line_value_of_nested_aliases_is_one_line_on_both_frameworks(framework, key, tmp_path):
    result = bounded_process("fit", "--framework", framework, *TINY, "--trainer.default_root_dir",
                             str(tmp_path / "logs"), key, nested_aliases())
    assert_one_line_error(result, "expands to more than")
    assert not (tmp_path / "logs").exists()


def test_a_run_folders_hparams_yaml_is_read_through_the_bound(tmp_path):
    from cnn.tools.events import read_settings

    (tmp_path / "hparams.yaml").write_text(f"lr: {nested_aliases()}\n")
    with pytest.raises(ConfigError, match="expands to more than"):
        read_settings(tmp_path)


# --- 10: a checkpoint's fields --------------------------------------------------------------------

def shared_reference_checkpoint(path: Path, levels: int = 8) -> Path:
    import torch

    lr = [0.001] * 10
    for _ in range(levels):
        lr = [lr] * 10  # pickle stores each level once
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": lr, "num_classes": 10},
                "epoch": 0, "global_step": 0}, path)
    return path


def test_a_checkpoint_whose_fields_expand_through_shared_references_is_refused(tmp_path):
    from cnn.weights import read_lightning_ckpt

    path = shared_reference_checkpoint(tmp_path / "shared.ckpt")
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ConfigError, match="shared references"):
        read_lightning_ckpt(str(path))


def test_a_changed_model_value_is_shown_cut_short_whatever_its_size():
    from cnn.weights import short_repr

    value = [[list(range(1000))] * 1000] * 10
    assert len(short_repr(value)) < 200


@pytest.mark.slow
@pytest.mark.parametrize("command", ["fit", "convert"])
def test_resuming_or_converting_a_checkpoint_of_shared_references_is_one_line(command, tmp_path):
    path = shared_reference_checkpoint(tmp_path / "shared.ckpt")
    args = (["convert", str(path), "--to", "mlx", "--out", str(tmp_path / "x.safetensors")]
            if command == "convert" else
            ["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "logs"), "--ckpt_path", str(path)])
    assert_one_line_error(bounded_process(*args), str(path), "shared references")


# --- 11: bench holds fit's batch bound ------------------------------------------------------------

def test_bench_refuses_a_batch_size_fit_would_refuse(tmp_path):
    out = tmp_path / "bench.json"
    result = run_cli("bench", "--config", "configs/mnist.yaml", "--batch-sizes", "32,100000000",
                     "--steps", "1", "--repeats", "1", "--out", str(out))
    assert_one_line_error(result, "--batch-sizes has 100000000")
    assert not out.exists()


# --- 12: class folders in linear work -------------------------------------------------------------

def class_folders(root: Path, count: int) -> Path:
    for i in range(count):
        (root / f"c{i:05d}").mkdir(parents=True)
    return root


def test_many_class_folders_with_one_linked_back_are_refused_naming_the_link(tmp_path):
    from cnn.data.folder import check_distinct_classes
    from cnn.errors import DataError

    root = class_folders(tmp_path / "tree", 3000)
    (root / "zz").symlink_to(root / "c00007")
    with pytest.raises(DataError, match=r"zz \(a link to .*c00007\) is the class folder"):
        check_distinct_classes(root, sorted(os.listdir(root)))
    (root / "zz").unlink()
    (root / "zz").symlink_to(root)
    with pytest.raises(DataError, match=r"zz .* holds the class folder"):
        check_distinct_classes(root, sorted(os.listdir(root)))


def test_an_unchanged_folder_has_its_classes_checked_once_per_command(tmp_path, monkeypatch):
    from cnn.data import folder

    root = class_folders(tmp_path / "tree", 3)
    checked = []
    monkeypatch.setattr(folder, "check_distinct_classes", lambda top, names: checked.append(top))
    folder.forget_reported()
    for _ in range(4):  # the config's links ask for the classes again and again
        assert folder.folder_classes(root) == ("c00000", "c00001", "c00002")
    assert checked == [root]
    (root / "c00003").mkdir()
    folder.folder_classes(root)
    assert checked == [root, root]
    folder.forget_reported()  # a new command checks anew
    folder.folder_classes(root)
    assert len(checked) == 3


def test_a_long_listing_says_how_far_it_is_by_folders_listed(tmp_path, monkeypatch, capsys):
    from cnn.data import folder

    root = class_folders(tmp_path / "tree", 5)
    for name in os.listdir(root):
        (root / name / "a.png").write_bytes(b"")
    monkeypatch.setattr(folder, "PROGRESS_EVERY", 2)
    listing = folder.list_folder(root)
    assert listing.labels.tolist() == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err.splitlines() == [f"listing {root}: 2 of 5 class folders",
                                                   f"listing {root}: 4 of 5 class folders"]


# --- 14, 16: a FIFO where a file is read ----------------------------------------------------------

def test_the_shared_opener_refuses_a_fifo_at_once(fifo):
    with pytest.raises(NotRegularFile, match="not a regular file"):
        open_regular(fifo)  # no writer: a plain open would wait for one for good
    with pytest.raises(NotRegularFile, match="a directory"):
        open_regular(fifo.parent)


def test_convert_of_a_fifo_is_not_a_regular_file(fifo, tmp_path):
    result = run_cli("convert", str(fifo), "--to", "mlx", "--out", str(tmp_path / "x.safetensors"))
    assert_one_line_error(result, str(fifo), "not a regular file")


@pytest.mark.slow
@pytest.mark.parametrize("framework, args", [
    ("torch", ["predict", "--ckpt_path"]), ("torch", ["fit", "--ckpt_path"]), ("mlx", ["fit", "--ckpt_path"]),
    ("torch", ["fit", "--model.init_from"]), ("mlx", ["fit", "--model.init_from"])])
def test_a_fifo_as_a_checkpoint_is_not_a_regular_file_on_every_command(framework, args, fifo, tmp_path):
    command, option = args
    result = run_cli_process(command, "--framework", framework, *TINY, "--trainer.default_root_dir",
                             str(tmp_path / "logs"), option, str(fifo), timeout=180)
    assert_one_line_error(result, str(fifo), "not a regular file")


# --- 16: configs that are empty or piped, outputs under a file, plot of a file --------------------

@pytest.mark.parametrize("text", ["", "# only a comment\n", "null\n"])
def test_an_empty_config_is_one_line_before_any_framework_is_loaded(text, tmp_path):
    config = tmp_path / "empty.yaml"
    config.write_text(text)
    result = run_cli("fit", "--config", str(config))
    assert_one_line_error(result, str(config), "is empty")


def test_a_piped_config_is_read_once_and_its_text_handed_to_the_parser(tmp_path):
    pipe = tmp_path / "config.pipe"
    os.mkfifo(pipe)
    text = "trainer:\n  max_epochs: 3\n"
    writer = threading.Thread(target=lambda: pipe.write_text(text))
    writer.start()
    line = CommandLine.read(["fit", "--config", "configs/mnist.yaml", "--config", str(pipe), "--x", "1"])
    args = line.read_configs().args()
    writer.join()
    assert args == ["fit", "--config", "configs/mnist.yaml", "--config", text, "--x", "1"]


@pytest.mark.slow
def test_fit_takes_its_config_from_stdin(tmp_path):
    result = run_cli_process("fit", "--config", "configs/mnist.yaml", "--config", "/dev/stdin", *TINY[2:],
                             "--trainer.default_root_dir", str(tmp_path / "logs"),
                             input="trainer:\n  max_epochs: 1\n", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((tmp_path / "logs").rglob("last.ckpt"))


def test_an_output_under_a_file_is_not_a_directory(tmp_path):
    from cnn import atomic

    blocker = tmp_path / "file.yaml"
    blocker.write_text("x: 1\n")
    with pytest.raises(NotADirectoryError) as raised:
        atomic.write_bytes(blocker / "x.safetensors", b"")
    assert raised.value.filename == str(blocker) and raised.value.strerror == "not a directory"


def test_plot_of_a_file_says_it_is_a_file(tmp_path):
    noise = tmp_path / "noise.bin"
    noise.write_bytes(os.urandom(4096))
    result = run_cli("plot", str(noise), "--out", str(tmp_path / "p.png"))
    assert_one_line_error(result, str(noise), "is a file, not a log folder")


def test_plot_of_a_record_claiming_a_terabyte_reads_only_whole_records(tmp_path):
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    run = tmp_path / "version_0"
    run.mkdir()
    length = struct.pack("<Q", 2**40)
    (run / "events.out.tfevents.1.host").write_bytes(length + struct.pack("<I", masked_crc32c(length)) + b"x" * 64)
    result = run_cli_process("plot", str(run), "--out", str(tmp_path / "p.png"), timeout=120,
                             preexec_fn=_bounded_memory)
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr
    assert_one_line_error(result, "no per-epoch scalars")
    assert "truncated" in result.stderr



# --- 13, 15: trackers that cannot be reached ------------------------------------------------------

def closed_port() -> int:
    from tests.servers import answers, free_port

    port = free_port()
    assert not answers(port)
    return port


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_mlflow_server_that_refuses_is_one_line_before_training(framework, tmp_path):
    uri = f"http://127.0.0.1:{closed_port()}"
    result = run_cli("fit", "--framework", framework, *TINY, "--trainer.default_root_dir", str(tmp_path / "logs"),
                     "--trainer.logger", "MLFlowLogger", "--trainer.logger.tracking_uri", uri)
    assert_one_line_error(result, "MLflow", uri, "Connection refused")
    assert not list(tmp_path.rglob("*.ckpt"))


def test_an_mlflow_store_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "logs"),
                     "--trainer.logger", "MLFlowLogger", "--trainer.logger.tracking_uri", f"file:{blocker}/mlruns")
    assert_one_line_error(result, "MLflow: cannot make the store")


def test_wandb_online_without_a_server_is_one_line_naming_offline(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_cli("fit", "--framework", "mlx", *TINY, "--trainer.default_root_dir", str(tmp_path / "logs"),
                     "--trainer.logger", "WandbLogger",
                     env={"WANDB_BASE_URL": url, "WANDB_API_KEY": "0" * 40, "WANDB_MODE": "online"})
    assert_one_line_error(result, "W&B", url, "offline true")


# --- 15: one line for each traceback ----------------------------------------------------------

@pytest.fixture
def breaking_nets(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "fixtures"))


@pytest.mark.parametrize("framework, net, words", [
    ("torch", "Seven", ["returned shape", ", 7) for", "10 classes"]),
    ("torch", "NoParams", ["has no parameters to train"]),
    ("torch", "Pair", ["returned a tuple"]),
    ("mlx", "MlxSeven", ["returned shape", ", 7) for"]),
    ("mlx", "MlxNoParams", ["has no parameters to train"])])
def test_a_network_that_breaks_the_contract_is_one_line_naming_the_rule(framework, net, words, breaking_nets,
                                                                        tmp_path):
    result = run_cli("fit", "--framework", framework, *TINY, "--trainer.default_root_dir", str(tmp_path / "logs"),
                     "--model.net", f"contract_breaking_nets.{net}")
    assert_one_line_error(result, f"model.net contract_breaking_nets.{net}", "docs/models.md", *words)


@pytest.mark.parametrize("flag, value, words", [
    ("--trainer.strategy", "fsdp", ["trainer:", "fsdp"]),
    ("--trainer.precision", "transformer-engine", ["trainer:", "transformer_engine"])])
def test_a_trainer_value_lightning_cannot_honour_here_is_one_line(flag, value, words, tmp_path):
    pytest.importorskip("torch")
    import torch

    if flag == "--trainer.strategy" and torch.cuda.is_available():
        pytest.skip("fsdp runs on this machine's GPU")
    result = run_cli("fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "logs"),
                     "--trainer.accelerator", "cpu", flag, value)
    assert_one_line_error(result, *words)


def test_an_mlx_batch_fraction_that_rounds_to_zero_is_one_line(tmp_path):
    result = run_cli("fit", "--framework", "mlx", *TINY, "--trainer.default_root_dir", str(tmp_path / "logs"),
                     "--trainer.limit_train_batches", "0.00001")
    assert_one_line_error(result, "limit_train_batches", "Try at least")


# --- 8, 15: signals that land where an exception is swallowed, or twice ---------------------------

class SignalsInFinalizer:
    """Sends SIGINT to this process from ``__del__``: the handler runs there, where python only
    prints an exception ("Exception ignored in") and goes on."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))  # bytecode, where the pending signal's handler runs


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one
def test_a_signal_whose_exception_a_finalizer_swallowed_still_stops_the_evaluation():
    from cnn.errors import Interrupted
    from cnn.interrupts import evaluation_stops

    with pytest.raises(Interrupted) as stop:
        with evaluation_stops("test"):
            SignalsInFinalizer()  # freed at once
            sum(range(1000))
    assert stop.value.code == 128 + signal.SIGINT


def test_a_second_ctrl_c_while_the_first_is_reported_changes_nothing(monkeypatch, capsys):
    from cnn import cli
    from cnn.errors import Interrupted

    def interrupted(line):
        raise Interrupted(signal.SIGINT, "fit", "resume with --ckpt_path last")

    def second_ctrl_c():  # lands while the first one's line is being printed
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))

    monkeypatch.setattr(cli, "run_trainer_command", interrupted)
    monkeypatch.setattr(cli, "end_open_lines", second_ctrl_c)
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # python's own: a KeyboardInterrupt
    try:
        status = cli.main(["fit"])
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert status == 128 + signal.SIGINT
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: fit interrupted by SIGINT")


@pytest.mark.skipif(shutil.which("g++") is None, reason="without g++, MLX builds no CPU kernel: no check")
def test_mlx_looks_for_its_cpu_compiler_before_an_evaluation_starts_not_in_its_first_step(tmp_path):
    """MLX checks once per process that g++ runs, through ``system()``, which ignores SIGINT in
    the whole process meanwhile: a Ctrl-C then is lost (``cnn.mx.compiler``). A g++ first on the
    PATH logs when it runs, a callback when the first test batch starts."""
    log, fake = tmp_path / "order.log", tmp_path / "bin" / "g++"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho g++ >> "{log}"\nexec {shutil.which("g++")} "$@"\n')
    fake.chmod(0o755)
    config = tmp_path / "mark.yaml"
    config.write_text("trainer:\n  callbacks:\n    - class_path: tests.signal_at_step.MlxMarkAtBatch\n"
                      f"      init_args: {{stage: test, path: {log}}}\n")
    result = run_cli_process("test", "--framework", "mlx", *TINY, "--config", str(config), "--ckpt_path", "untrained",
                             "--trainer.default_root_dir", str(tmp_path / "logs"),
                             env={**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert log.read_text().splitlines()[:2] == ["g++", "batch"]


@pytest.mark.slow
def test_mlx_stops_at_a_ctrl_c_that_lands_as_the_final_test_starts(tmp_path):
    command = [sys.executable, str(ROOT / "cli.py"), "fit", "--framework", "mlx", *TINY[:-2],
               "--trainer.default_root_dir", str(tmp_path / "logs")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    while b"Testing" not in seen:  # tqdm's bar: the marker, written without a newline
        chunk = os.read(process.stdout.fileno(), 4096)
        assert chunk, seen.decode(errors="replace")[-2000:]
        seen += chunk
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=300)
    output = (seen + rest).decode(errors="replace")
    assert process.returncode == 128 + signal.SIGINT, output[-2000:]
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith("error: the test that ends fit interrupted by SIGINT")


def test_a_run_folder_that_cannot_be_written_is_refused_before_any_writer_starts(tmp_path, monkeypatch):
    from cnn import runs

    real_access = os.access
    monkeypatch.setattr(runs.os, "access", lambda path, mode: False if mode == os.W_OK else real_access(path, mode))
    with pytest.raises(ConfigError, match="cannot be written"):
        runs.own_run(str(tmp_path))
    assert str(tmp_path) not in runs._OWNED  # not left locked


def test_a_path_an_os_error_names_in_bytes_is_printed_as_text(monkeypatch):
    import errno

    from cnn import cli

    def read_only(line):
        raise OSError(errno.EROFS, "Read-only file system", os.fsencode("/runs/version_0/events.out"))

    monkeypatch.setattr(cli, "run_trainer_command", read_only)
    result = run_cli("fit")
    assert_one_line_error(result, "error: /runs/version_0/events.out: Read-only file system")
