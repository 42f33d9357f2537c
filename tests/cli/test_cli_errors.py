"""Errors a user can cause end in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from tests.cli_runs import run_cli, short_run

UNHONOURED_TRAINER_OPTION = """\
trainer:
  barebones: true
data:
  dataset: mnist
"""
LIGHTNING_ONLY_CALLBACK = """\
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.BatchSizeFinder
      init_args: {mode: power}
data:
  dataset: mnist
"""
UNKNOWN_KEY = """\
trainer:
  max_epochs: 1
  no_such_option: 3
"""


def assert_one_line_error(result, *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.stderr[-2000:]
    assert sum(line.startswith("error: ") for line in lines) == 1
    for word in words:
        assert word in lines[-1], lines[-1]


@pytest.mark.parametrize("framework", ["torch", "mlx"])
@pytest.mark.parametrize("args, words", [
    (["--trainer.max_epochs", "abc"], ["trainer.max_epochs"]),
    (["--data.dataset", "imagenet"], ["imagenet", "mnist"]),
    (["--config", "no/such/config.yaml"], ["no/such/config.yaml"]),
    (["--model.no_such_argument", "1"], ["model.no_such_argument"]),
])
def test_a_bad_option_or_value_is_named_in_one_line(framework, args, words):
    assert_one_line_error(run_cli("fit", "--framework", framework, *args), *words)


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_an_unknown_config_key_is_named_in_one_line(framework, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(UNKNOWN_KEY)
    result = run_cli("fit", "--framework", framework, "--config", str(config))
    assert_one_line_error(result, "trainer.no_such_option")


def test_an_unknown_framework_is_named_in_one_line():
    assert_one_line_error(run_cli("fit", "--framework", "jax"), "jax", "torch", "mlx")


@pytest.mark.parametrize("config_text, words", [
    (UNHONOURED_TRAINER_OPTION, ["barebones=True", "MLX"]),
    (LIGHTNING_ONLY_CALLBACK, ["BatchSizeFinder", "MLX"]),
])
def test_what_the_mlx_trainer_cannot_honour_is_named_not_ignored(config_text, words, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    result = run_cli("fit", "--framework", "mlx", "--config", str(config))
    assert_one_line_error(result, *words)


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_validation_interval_beyond_the_epoch_is_named_in_one_line(framework, tmp_path):
    """Lightning refuses ``val_check_interval`` above the epoch's batches once fit has counted them (the MLX trainer
    with the same words): one line on both sides, no traceback, no run folder kept."""
    result = run_cli("fit", "--framework", framework, *short_run(), "--trainer.val_check_interval", "5",
                     "--trainer.default_root_dir", str(tmp_path))
    assert_one_line_error(result, "val_check_interval", "(5)", "(2)")
    assert not [path for path in tmp_path.rglob("version_*")], "a failed start keeps no run folder"



def test_a_framework_no_trainer_knows_is_one_line_whatever_options_follow(capsys):
    from cnn.cli import main

    assert main(["--framework", "jax", "fit", "--model", "a.Model", "--trainer.callbacks", "b.Callback"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown framework 'jax': choose torch or mlx"
