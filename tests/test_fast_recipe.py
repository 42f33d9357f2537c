"""The switches the one-epoch recipe (configs/mnist_fast.yaml) uses, on both frameworks: no
train-accuracy pass when it is switched off, Adam's betas and the one-cycle rate as configured."""

from __future__ import annotations

import pytest
import torch
import yaml

from cnn import schema
from cnn.schedule import learning_rate_at
from cnn.tools.events import read_scalars
from tests.cli_runs import ROOT, fit_both

STEPS = 4
TINY_FIT = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(STEPS),
            "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
            "--trainer.log_every_n_steps", "1", "--data.batch_size", "32",
            "--data.eval_batch_size", "500")


@pytest.fixture(scope="module")
def fast_fits(tmp_path_factory):
    """One tiny fit per framework with the train-accuracy pass off, betas (0.8, 0.95), onecycle."""
    logs = tmp_path_factory.mktemp("fast_fits")
    return fit_both(logs, *TINY_FIT, "--model.train_accuracy", "false",
                    "--model.betas", "[0.8, 0.95]", "--model.lr", "0.01",
                    "--model.lr_schedule", "onecycle")


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_fit_with_the_train_accuracy_pass_off_logs_no_train_accuracy_but_everything_else(
        fast_fits, framework):
    tags = set(read_scalars(fast_fits[framework]))
    assert schema.TRAIN_ACC not in tags
    assert {schema.TRAIN_LOSS, schema.VAL_ACC, schema.VAL_LOSS, schema.TEST_ACC} <= tags


def test_the_torch_optimizer_runs_with_the_configured_betas_and_ends_at_the_one_cycle_rate(fast_fits):
    (checkpoint,) = (fast_fits["torch"] / "checkpoints").glob("epoch=*.ckpt")
    group = torch.load(checkpoint, weights_only=True)["optimizer_states"][0]["param_groups"][0]
    assert tuple(group["betas"]) == (0.8, 0.95)
    # the scheduler has stepped after the last update: the rate for step STEPS, kept at the end
    assert group["lr"] == pytest.approx(learning_rate_at(STEPS, STEPS, 0.01, "onecycle"))


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_the_recipe_switches_are_saved_with_the_run(fast_fits, framework):
    saved = yaml.safe_load((fast_fits[framework] / "hparams.yaml").read_text())
    assert saved["train_accuracy"] is False
    assert list(saved["betas"]) == [0.8, 0.95]
    assert saved["lr_schedule"] == "onecycle"


def test_the_default_config_keeps_the_train_accuracy_pass_and_the_fast_one_drops_it():
    default = yaml.safe_load((ROOT / "configs" / "mnist.yaml").read_text())["model"]
    fast = yaml.safe_load((ROOT / "configs" / "mnist_fast.yaml").read_text())
    assert default.get("train_accuracy", True) is True
    assert fast["model"]["train_accuracy"] is False
    assert fast["trainer"]["max_epochs"] == 1


@pytest.mark.parametrize("betas", [[0.9, 1.0], [-0.1, 0.95], [0.9, float("nan")]])
def test_betas_outside_zero_to_one_are_refused_in_one_line_before_anything_is_built(betas):
    from cnn.errors import ConfigError
    from cnn.limits import check_config

    with pytest.raises(ConfigError, match=r"model\.betas .* two numbers in \[0, 1\)"):
        check_config({"model": {"betas": betas}})
    check_config({"model": {"betas": [0.8, 0.95]}})  # and the recipe's own pass
