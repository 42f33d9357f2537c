"""Nothing lost, round four (issue 32): ``last`` with any logger and in a moved run, outputs that
would overwrite, evaluations of untrained weights, launches and optimizers that cannot work.

Every case runs the real command line on both frameworks where it applies; ``trained`` is one
short fit per framework whose logs root the cases copy before they change it.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from jsonargparse import Namespace

from cnn.atomic import check_output
from cnn.ckpt_path import VERSIONED, CheckpointHome, checkpoint_home
from cnn.errors import ConfigError
from cnn.predictions import write_rows
from cnn.runs import newest_checkpoint, relocated_state, saved_step
from cnn.weights import read_weights
from tests.cli.test_cli_errors import assert_one_line_error
from tests.cli_runs import ROOT, run_cli, run_cli_process, short_run

FRAMEWORKS = ("torch", "mlx")
SUFFIX = {"torch": ".ckpt", "mlx": ".safetensors"}
TINY = short_run(eval_batch_size=200)  # one epoch of 2 batches
EVAL = short_run(epochs=None, eval_batch_size=200)


def fit(framework: str, root: Path, *args: str):
    return run_cli("fit", "--framework", framework, *TINY, "--trainer.default_root_dir", str(root), *args)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """framework -> the logs root of a finished one-epoch fit (``mnist/<framework>/version_0``)."""
    roots = {}
    for framework in FRAMEWORKS:
        roots[framework] = tmp_path_factory.mktemp(f"trained-{framework}")
        result = fit(framework, roots[framework])
        assert result.returncode == 0, result.stderr[-3000:]
    return roots


def safetensors_with_step(path: Path, step: int) -> Path:
    """A file holding only a safetensors header whose metadata records ``step``, as both sides write it."""
    header = json.dumps({"__metadata__": {"cnn": json.dumps({"global_step": step})}}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


# -- 1. `last` where the run's own logger or checkpoint callback put it ----------------------------
def test_ckpt_path_last_is_looked_for_where_each_kind_of_run_keeps_its_checkpoints(tmp_path):
    def config(logger, callbacks=()):
        return Namespace(trainer=Namespace(default_root_dir=str(tmp_path), logger=logger,
                                           callbacks=list(callbacks)))

    csv = Namespace(class_path="lightning.pytorch.loggers.CSVLogger",
                    init_args=Namespace(save_dir="runs", name="x", version=None))
    assert checkpoint_home(config(csv), "logs", "mnist/torch") == CheckpointHome(Path("runs/x"), VERSIONED)
    assert checkpoint_home(config(None), "logs", "mnist/torch") == CheckpointHome(tmp_path / "mnist/torch", VERSIONED)
    assert checkpoint_home(config(False), "logs", "m") == CheckpointHome(tmp_path / "checkpoints")
    pinned = {"class_path": "TensorBoardLogger", "init_args": {"save_dir": "tb", "name": "n", "version": 3}}
    assert checkpoint_home(config([pinned, csv]), "logs", "m") == CheckpointHome(Path("tb/n/version_3/checkpoints"))
    callback = {"class_path": "ModelCheckpoint", "init_args": {"dirpath": "mine"}}
    assert checkpoint_home(config(csv, [callback]), "logs", "m") == CheckpointHome(Path("mine"))
    with pytest.raises(ConfigError, match="MLFlowLogger names its run folder"):
        checkpoint_home(config({"class_path": "MLFlowLogger", "init_args": {}}), "logs", "m")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_ckpt_path_last_with_a_csv_logger_and_no_run_is_one_error_line_naming_its_folder(framework, tmp_path):
    result = fit(framework, tmp_path, "--trainer.logger", "CSVLogger", "--trainer.logger.save_dir",
                 str(tmp_path / "csv"), "--trainer.logger.name", "x", "--ckpt_path", "last")
    assert_one_line_error(result, "--ckpt_path last", str(tmp_path / "csv" / "x"))
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("logger", ["CSVLogger", "TensorBoardLogger", "false"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_ckpt_path_last_with_any_logger_resumes_the_run_instead_of_starting_afresh(framework, logger, tmp_path):
    args = (["--trainer.logger", "false"] if logger == "false" else
            # Lightning's class path: in one test process the short name also fits our subclass
            ["--trainer.logger", f"lightning.pytorch.loggers.{logger}",
             "--trainer.logger.save_dir", str(tmp_path / "own"), "--trainer.logger.name", "x"])
    assert fit(framework, tmp_path, *args).returncode == 0
    result = fit(framework, tmp_path, *args, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no last checkpoint" not in result.stderr
    newest = newest_checkpoint(tmp_path / "own" / "x" if logger != "false" else tmp_path, SUFFIX[framework],
                               VERSIONED if logger != "false" else "checkpoints")
    assert newest.name.startswith("last") and read_weights(str(newest)).global_step == 4  # 2 epochs, not 1


# -- 2. a moved or copied run folder -----------------------------------------------------------
def test_a_moved_checkpoint_state_points_into_its_new_folder_only_where_its_files_are(tmp_path):
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "last.ckpt").write_bytes(b"x")
    state = {"dirpath": "/old", "last_model_path": "/old/last.ckpt", "best_model_path": "/old/e=0.ckpt",
             "kth_best_model_path": "/old/e=0.ckpt", "best_k_models": {"/old/e=0.ckpt": 0.5}}
    moved = relocated_state(state, str(tmp_path / "new"))
    assert moved["last_model_path"] == str(tmp_path / "new" / "last.ckpt")
    assert moved["best_k_models"] == {str(tmp_path / "new" / "e=0.ckpt"): 0.5}
    assert relocated_state(state, str(tmp_path / "elsewhere")) is state  # a new run's empty folder


def test_last_wins_over_a_newer_written_file_unless_it_holds_an_older_step(tmp_path):
    folder = tmp_path / "version_0" / "checkpoints"
    last = safetensors_with_step(folder / "last.safetensors", 8)
    safetensors_with_step(folder / "epoch=0-step=4.safetensors", 4)  # copied after last (cp -r)
    assert saved_step(last) == 8
    assert newest_checkpoint(tmp_path, ".safetensors") == last
    newer = safetensors_with_step(folder / "epoch=2-step=12.safetensors", 12)  # a kill during last's write
    assert newest_checkpoint(tmp_path, ".safetensors") == newer


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_step_a_checkpoint_records_is_read_from_its_file_without_unpickling(trained, framework):
    checkpoints = list(trained[framework].rglob(f"*{SUFFIX[framework]}"))
    assert checkpoints
    for path in checkpoints:
        assert saved_step(path) == read_weights(str(path)).global_step == 2


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_copied_run_resumed_with_last_rewrites_its_own_last_not_a_last_v1(trained, framework, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(trained[framework], root, copy_function=shutil.copy)  # as cp -r: new times, any order
    result = fit(framework, root, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "has no whole last" not in result.stderr
    checkpoints = root / "mnist" / framework / "version_0" / "checkpoints"
    assert not list(checkpoints.glob("last-v*"))
    assert read_weights(str(checkpoints / f"last{SUFFIX[framework]}")).global_step == 4
    assert sorted(p.name for p in (root / "mnist" / framework).iterdir()) == ["version_0"]


# -- 3. outputs that would overwrite -----------------------------------------------------------
def test_bench_out_over_an_existing_file_is_one_error_line_and_leaves_it_as_it_was(tmp_path):
    config = tmp_path / "mnist.yaml"
    shutil.copy(ROOT / "configs/mnist.yaml", config)
    before = config.read_bytes()
    result = run_cli("bench", "--config", str(config), "--out", str(config))
    assert_one_line_error(result, f"--out {config} exists; pass --force")
    assert config.read_bytes() == before


def test_every_output_a_user_names_refuses_a_folder_and_replaces_a_file_only_when_forced(tmp_path):
    with pytest.raises(ConfigError, match="is a directory; name the .json file"):
        check_output(tmp_path, True, "the .json file")
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(ConfigError, match="exists; pass --force"):
        check_output(tmp_path / "a.json", False)
    check_output(tmp_path / "a.json", True)


def test_an_output_that_is_a_symbolic_link_is_written_through_and_stays_a_link(tmp_path):
    target, link = tmp_path / "kept" / "predictions.csv", tmp_path / "predictions.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    link.symlink_to(target)
    write_rows([{"file": "a.png", "class": "7", "probability": 0.9, "error": ""}], link)
    assert link.is_symlink() and "a.png,7,0.9" in target.read_text()


# -- 4. evaluating untrained weights only when asked -------------------------------------------
@pytest.mark.parametrize("command", ["validate", "test", "predict"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_evaluation_without_ckpt_path_is_one_error_line_and_creates_nothing(framework, command, tmp_path):
    result = run_cli(command, "--framework", framework, *EVAL, "--trainer.default_root_dir", str(tmp_path))
    assert_one_line_error(result, f"{command} needs the checkpoint", "--ckpt_path untrained")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_ckpt_path_untrained_evaluates_the_seeded_weights_on_purpose(framework, tmp_path):
    result = run_cli("test", "--framework", framework, *EVAL, "--trainer.default_root_dir", str(tmp_path),
                     "--ckpt_path", "untrained")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/acc" in result.stdout


# -- 5. a launch whose backend cannot start ----------------------------------------------------
def test_a_launch_with_a_backend_this_machine_lacks_is_one_error_line_before_any_rank(tmp_path):
    mx = pytest.importorskip("mlx.core")
    if mx.distributed.is_available("nccl"):
        pytest.skip("this machine has the nccl backend")
    result = run_cli("launch", "-n", "2", "--backend", "nccl", "fit", *TINY,
                     "--trainer.default_root_dir", str(tmp_path))
    assert_one_line_error(result, "nccl backend is not available")
    assert not any(tmp_path.iterdir())


def test_a_launched_rank_left_alone_by_its_backend_stops_in_one_line_instead_of_training(tmp_path):
    result = run_cli("fit", "--framework", "mlx", *TINY, "--trainer.default_root_dir", str(tmp_path),
                     env={"MLX_RANK": "0", "MLX_WORLD_SIZE": "2"})
    assert_one_line_error(result, "rank 0: the distributed backend did not start")
    assert not any(tmp_path.iterdir())


# -- 6. optimizer and scheduler values ---------------------------------------------------------
@pytest.mark.parametrize(("args", "words"), [
    (["--optimizer", "SGD", "--optimizer.lr", "-1"], ["optimizer.", "is -1", ">= 0"]),
    (["--optimizer", "SGD", "--optimizer.lr", "nan"], ["optimizer.", "nan", "finite"]),
    (["--optimizer", "Adam", "--optimizer.betas", "[2, 3]"], ["optimizer.betas", "[0, 1)"]),
    (["--optimizer", "SGD", "--optimizer.lr", "0.1", "--lr_scheduler", "StepLR",
      "--lr_scheduler.step_size", "0"], ["lr_scheduler.step_size is 0"]),
])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_optimizer_value_out_of_range_is_one_error_line_before_anything_runs(framework, args, words, tmp_path):
    result = fit(framework, tmp_path, *args)
    assert_one_line_error(result, *words)
    assert not any(tmp_path.iterdir())


def test_an_optimizer_that_needs_a_closure_is_one_error_line(tmp_path):
    result = fit("torch", tmp_path, "--optimizer", "LBFGS")
    assert_one_line_error(result, "torch.optim.LBFGS needs a closure")
    assert not any(tmp_path.iterdir())


# -- 7. a resume with another optimizer --------------------------------------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_resume_with_another_optimizer_is_one_error_line_and_leaves_the_run_folder_as_it_was(trained, framework,
                                                                                               tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(trained[framework], root)
    run = root / "mnist" / framework / "version_0"
    before = files(run)
    result = fit(framework, root, "--trainer.max_epochs", "2", "--optimizer", "SGD", "--optimizer.lr", "0.01",
                 "--ckpt_path", "last")
    assert_one_line_error(result, "this fit builds SGD", "--model.init_from")
    # no checkpoint, no config.yaml saying SGD, no events file whose session start hides the run's test
    assert files(run) == before


# -- 17. smaller ones --------------------------------------------------------------------------
def test_a_sigterm_mid_epoch_leaves_last_alone_and_no_stray_checkpoint(tmp_path):
    config = tmp_path / "stop.yaml"
    config.write_text("trainer:\n  callbacks:\n    - class_path: tests.signal_at_step.TorchSignalAtStep\n"
                      "      init_args: {step: 1}\n")
    # a process of its own: the signal and the exit status are what is tested
    result = run_cli_process("fit", *TINY, "--config", str(config), "--trainer.default_root_dir",
                             str(tmp_path / "logs"), timeout=300)
    assert result.returncode == 143, result.stderr[-3000:]
    checkpoints = tmp_path / "logs" / "mnist" / "torch" / "version_0" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt"]
    assert read_weights(str(checkpoints / "last.ckpt")).global_step == 1


@pytest.mark.slow
def test_a_launched_predict_prints_its_table_once(trained, tmp_path):
    pytest.importorskip("mlx.core")
    from PIL import Image

    from tests.reliability.test_distributed import mlx_launch

    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    last = next(trained["mlx"].rglob("last.safetensors"))
    result = mlx_launch("predict", *EVAL, "--ckpt_path", str(last), "--data.predict_files", f"[{image}]")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(str(image)) == 1, result.stdout


def test_a_printed_hint_quotes_a_path_with_spaces_for_the_shell():
    from cnn.errors import TrainingInterrupted

    assert TrainingInterrupted(15, "/my runs/last.ckpt").hint == "resume with --ckpt_path '/my runs/last.ckpt'"
