"""The switches the one-epoch recipe (configs/mnist_fast.yaml) uses, on both frameworks: no
train-accuracy pass when it is switched off, Adam's betas and the one-cycle rate as configured;
and what runs around a fit's training only once: the dataset is read once per fit, its test
included; the fast config skips the sanity validation, the default keeps it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from cnn import schema
from cnn.schedule import learning_rate_at
from cnn.tools.events import read_scalars
from tests.cli_runs import ROOT, fit_both, run_cli

STEPS = 4
TINY_FIT = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(STEPS),
            "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
            "--trainer.log_every_n_steps", "1", "--data.batch_size", "32",
            "--data.eval_batch_size", "500")


@pytest.fixture(scope="module")
def fast_fits(tmp_path_factory):
    """One tiny fit per framework with the train-accuracy pass off, betas (0.8, 0.95), onecycle,
    label smoothing 0.1."""
    logs = tmp_path_factory.mktemp("fast_fits")
    return fit_both(logs, *TINY_FIT, "--model.train_accuracy", "false",
                    "--model.betas", "[0.8, 0.95]", "--model.lr", "0.01",
                    "--model.lr_schedule", "onecycle", "--model.label_smoothing", "0.1")


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
    assert saved["label_smoothing"] == 0.1


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


def _log_probs_and_labels(seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = torch.tensor(rng.normal(scale=3.0, size=(16, 10)).astype(np.float32))
    return torch.log_softmax(logits, dim=1), torch.tensor(rng.integers(0, 10, 16))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.5])
def test_both_frameworks_compute_the_same_smoothed_training_loss_on_the_same_log_probabilities(
        label_smoothing):
    from cnn.mx.module import training_loss as mx_training_loss

    import mlx.core as mx

    from cnn.pt.module import training_loss as pt_training_loss

    log_probs, labels = _log_probs_and_labels()
    pt_loss = pt_training_loss(log_probs, labels, label_smoothing).item()
    mx_loss = mx_training_loss(mx.array(log_probs.numpy()), mx.array(labels.numpy()),
                               label_smoothing).item()
    # the definition: (1 - eps) on the label plus eps spread evenly over the 10 classes
    target = torch.full_like(log_probs, label_smoothing / 10)
    target[torch.arange(len(labels)), labels] += 1 - label_smoothing
    expected = -(target * log_probs).sum(dim=1).mean().item()
    assert pt_loss == pytest.approx(expected, rel=1e-5)
    assert mx_loss == pytest.approx(expected, rel=1e-5)


def test_no_label_smoothing_is_the_negative_log_likelihood_the_classifiers_trained_on_before():
    from cnn.mx.module import training_loss as mx_training_loss

    import mlx.core as mx
    import mlx.nn as mnn

    from cnn.pt.module import training_loss as pt_training_loss

    log_probs, labels = _log_probs_and_labels(1)
    assert torch.equal(pt_training_loss(log_probs, labels),
                       torch.nn.functional.nll_loss(log_probs, labels))
    mx_log_probs, mx_labels = mx.array(log_probs.numpy()), mx.array(labels.numpy())
    assert mx.array_equal(mx_training_loss(mx_log_probs, mx_labels),
                          mnn.losses.nll_loss(mx_log_probs, mx_labels, reduction="mean"))


def test_smoothing_moves_the_loss_of_a_confident_right_answer_up():
    from cnn.pt.module import training_loss as pt_training_loss

    _, labels = _log_probs_and_labels(2)
    confident = torch.log_softmax(torch.nn.functional.one_hot(labels, 10).float() * 20, dim=1)
    assert pt_training_loss(confident, labels, 0.1) > pt_training_loss(confident, labels) + 0.1


@pytest.mark.parametrize("label_smoothing", [1.0, -0.1, float("nan")])
def test_label_smoothing_outside_zero_to_one_is_refused_in_one_line(label_smoothing):
    from cnn.errors import ConfigError
    from cnn.limits import check_config

    with pytest.raises(ConfigError, match=r"model\.label_smoothing .* a number in \[0, 1\)"):
        check_config({"model": {"label_smoothing": label_smoothing}})
    check_config({"model": {"label_smoothing": 0.1}})


def test_only_the_one_epoch_recipe_smooths_its_labels_so_every_other_config_trains_as_before():
    smoothing = {path.name: (yaml.safe_load(path.read_text()).get("model") or {}).get("label_smoothing", 0.0)
                 for path in (ROOT / "configs").glob("*.yaml")}
    assert smoothing.pop("mnist_fast.yaml") == 0.1
    assert smoothing and set(smoothing.values()) == {0.0}


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_fit_and_its_test_read_the_dataset_files_once(framework, shared_data, tmp_path, monkeypatch):
    from cnn.data import fetch

    reads = []

    def locate(name, *args, **kwargs):  # where every read of the files starts: found, verified
        reads.append(name)
        return real_locate(name, *args, **kwargs)

    real_locate = fetch.locate
    monkeypatch.setattr(fetch, "locate", locate)  # counted, then found and read for real
    result = run_cli("fit", "--framework", framework, *TINY_FIT, "--data.data_dir",
                     str(shared_data / "mnist"), "--trainer.default_root_dir", str(tmp_path),
                     "--trainer.enable_progress_bar", "false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert schema.TEST_ACC in read_scalars(next(tmp_path.rglob("version_0")))  # it did test
    assert reads == ["mnist"]


def test_only_the_fast_config_skips_the_sanity_validation():
    sanity = {path.name: (yaml.safe_load(path.read_text()).get("trainer") or {}).get("num_sanity_val_steps")
              for path in (ROOT / "configs").glob("*.yaml")}
    assert sanity.pop("mnist_fast.yaml") == 0
    assert sanity and set(sanity.values()) == {None}  # Lightning's default: two batches
