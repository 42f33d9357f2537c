"""Run options a Lightning user expects to work the same on both frameworks, through the real
CLI: no checkpoints at all, checkpoints without a logger, and the one-line refusals of what a
run cannot find (a best or last checkpoint in a new process, a logger this side cannot build)."""

from __future__ import annotations

import pytest

from tests.cli_runs import ROOT, run_cli, short_run

FRAMEWORKS = ("torch", "mlx")
CONFIG = str(ROOT / "configs" / "mnist.yaml")
TINY = (*short_run(config=None), "--trainer.enable_model_summary", "false")
CHECKPOINT_SUFFIX = {"torch": ".ckpt", "mlx": ".safetensors"}


def checkpoints_under(folder):
    return sorted(p.relative_to(folder).as_posix() for suffix in CHECKPOINT_SUFFIX.values()
                  for p in folder.rglob(f"*{suffix}"))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_enable_checkpointing_false_trains_writes_no_checkpoint_and_tests_the_trained_weights(tmp_path, framework):
    result = run_cli("--framework", framework, "fit", "--config", CONFIG, *TINY,
                     "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_checkpointing", "false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoints_under(tmp_path) == []
    assert ("note: no checkpoint was kept (trainer.enable_checkpointing false): testing the weights as "
            "trained") in result.stderr.splitlines()
    assert "test/acc" in result.stdout
    (run,) = (tmp_path / "mnist" / framework).glob("version_*")
    assert (run / "config.yaml").is_file()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_without_a_logger_checkpoints_go_to_the_default_root_dirs_checkpoints_folder(tmp_path, framework):
    # Lightning's ModelCheckpoint without a logger: <default_root_dir>/checkpoints; the default
    # root is logs/ on both sides
    result = run_cli("--framework", framework, "fit", "--config", CONFIG, *TINY, "--trainer.logger", "false",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    suffix = CHECKPOINT_SUFFIX[framework]
    assert checkpoints_under(tmp_path) == [f"logs/checkpoints/epoch=0-step=2{suffix}",
                                           f"logs/checkpoints/last{suffix}"]
    assert not (tmp_path / "logs" / "mnist").exists()  # no run folder without a logger


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("command", ["validate", "fit"])
def test_ckpt_path_best_in_a_new_process_is_one_error_line(tmp_path, framework, command):
    result = run_cli("--framework", framework, command, "--config", CONFIG, *TINY,
                     "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "best")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --ckpt_path best: only the fit that kept a best checkpoint knows which it is (fit tests "
        f"it when it ends); give its file (under {tmp_path}/mnist/{framework}/version_N/checkpoints, "
        "beside last), or --ckpt_path last")
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_ckpt_path_last_with_no_run_to_find_is_one_error_line(tmp_path, framework):
    result = run_cli("--framework", framework, "validate", "--config", CONFIG, *TINY,
                     "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "last")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --ckpt_path last: there is no checkpoint under {tmp_path}/mnist/{framework}; give a "
        "checkpoint file, or train one with fit (without --ckpt_path)")


@pytest.mark.parametrize(("framework", "line"), [
    ("torch", "error: CometLogger needs the comet_ml package, which is not installed: pip install comet-ml"),
    ("mlx", "error: trainer.logger: CometLogger has no MLX mirror (MLX has CSVLogger, MLFlowLogger, "
            "TensorBoardLogger, WandbLogger); remove it or run with --framework torch")])
def test_a_logger_this_side_cannot_build_is_one_error_line_saying_why(tmp_path, framework, line):
    try:
        import comet_ml  # noqa: F401
        pytest.skip("comet_ml is installed here")
    except ImportError:
        pass
    result = run_cli("--framework", framework, "fit", "--config", CONFIG, *TINY,
                     "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "CometLogger")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == line
    assert not any(tmp_path.iterdir())
