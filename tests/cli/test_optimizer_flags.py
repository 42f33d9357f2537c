"""``--optimizer`` and ``--lr_scheduler`` (LightningCLI's keys) on both frameworks: a torch class
on torch, its ``mlx.optimizers`` twin on MLX, the same updates and rates; one ``error:`` line for
a name without an equal; the model's own optimizer and schedule when neither is given."""

from __future__ import annotations

import inspect

from cnn.mx.checkpoint import CHECKPOINT_IO
from cnn.mx.cli_optimizers import build_optimizer, build_schedule

import mlx.core as mx
import numpy as np
import pytest
import torch
import yaml

from cnn.command_line import CommandLine
from cnn.config_translation import translate_args
from cnn.errors import ConfigError
from cnn.optimizers import translate
from cnn.schedule import learning_rate_at
from cnn.tools.events import read_scalars
from tests.cli_runs import fit_both, run_cli

# torch class, its arguments (off its defaults where MLX's twin takes them)
OPTIMIZERS = [
    ("Adam", {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.2}),
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9}),
    ("Adagrad", {"lr": 0.1}),
    ("Adadelta", {"lr": 1.0, "rho": 0.8}),
]
SCHEDULERS = [
    ("StepLR", {"step_size": 2, "gamma": 0.5}),
    ("ExponentialLR", {"gamma": 0.7}),
    ("CosineAnnealingLR", {"T_max": 6, "eta_min": 0.001}),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 0.75, "total_iters": 4}),
]


def translated(args: list[str], framework: str) -> list[str]:
    """``args`` as the config translation hands them to ``framework``'s parser."""
    return translate_args(CommandLine.read(args, framework), []).args()


@pytest.mark.parametrize(("name", "args"), OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_each_torch_optimizer_and_its_mlx_twin_take_the_same_steps(name, args):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((4, 3)).astype(np.float32)
    gradients = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(4)]
    weight = torch.nn.Parameter(torch.from_numpy(start.copy()))
    ours = getattr(torch.optim, name)([weight], **args)
    twin = build_optimizer(translate("optimizer", {"class_path": name, "init_args": args}, "mlx"))
    params = {"w": mx.array(start)}
    twin.init(params)
    for gradient in gradients:
        weight.grad = torch.from_numpy(gradient.copy())
        ours.step()
        params = twin.apply_gradients({"w": mx.array(gradient)}, params)
    np.testing.assert_allclose(np.array(params["w"]), weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.array(params["w"]), start)


@pytest.mark.parametrize(("name", "args"), SCHEDULERS, ids=[n for n, _ in SCHEDULERS])
def test_each_torch_scheduler_and_its_mlx_schedule_give_the_same_rate_each_epoch(name, args):
    lr = 0.1
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = getattr(torch.optim.lr_scheduler, name)(optimizer, **args)
    spec = translate("lr_scheduler", {"class_path": name, "init_args": args}, "mlx", base_lr=lr)
    schedule = build_schedule(spec, lr)
    rates = []
    for epoch in range(6):
        rates.append((optimizer.param_groups[0]["lr"], float(schedule(epoch))))
        optimizer.step()
        scheduler.step()
    torch_rates, mlx_rates = zip(*rates)
    np.testing.assert_allclose(mlx_rates, torch_rates, rtol=1e-6)
    assert len(set(torch_rates)) > 1


@pytest.mark.parametrize("name", sorted({name for name, _ in OPTIMIZERS}))
def test_a_torch_optimizer_with_every_argument_lightning_writes_builds_its_mlx_twin(name):
    # config.yaml of a torch run lists every init argument at its default (foreach: null, ...)
    parameters = list(inspect.signature(getattr(torch.optim, name)).parameters.values())[1:]
    written = {p.name: p.default for p in parameters}
    built = build_optimizer(translate("optimizer", {"class_path": f"torch.optim.{name}", "init_args": written}, "mlx"))
    assert float(built.learning_rate) == pytest.approx(written["lr"])


def test_a_torch_optimizer_and_scheduler_on_mlx_become_their_mlx_twins():
    args = translated(["fit", "--optimizer", "Adam", "--optimizer.lr", "0.01", "--lr_scheduler", "StepLR",
                       "--lr_scheduler.step_size", "1"], "mlx")
    assert args[:1] == ["fit"]
    assert yaml.safe_load(args[2]) == {"class_path": "cnn.mx.module.AdamL2", "init_args": {
        "learning_rate": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}}
    assert yaml.safe_load(args[4]) == {"class_path": "mlx.optimizers.step_decay",
                                   "init_args": {"step_size": 1, "decay_rate": 0.1}}
    sgd = translate("optimizer", {"class_path": "torch.optim.SGD", "init_args": {"momentum": 0.9}}, "mlx")
    assert sgd == {"class_path": "mlx.optimizers.SGD", "init_args": {
        "learning_rate": 1e-3, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False}}


def test_a_config_files_optimizer_is_overridden_by_later_options_in_order(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {"dropout": 0.1}, "optimizer": {
        "class_path": "torch.optim.SGD", "init_args": {"lr": 0.5, "momentum": 0.9}}}))
    args = translated(["fit", "--config", str(config), "--optimizer.lr", "0.25"], "mlx")
    assert yaml.safe_load(args[2]) == {"model": {"dropout": 0.1}}
    assert yaml.safe_load(args[4])["init_args"] == {"learning_rate": 0.25, "momentum": 0.9, "weight_decay": 0.0,
                                                "nesterov": False}
    # a new class drops the arguments of the one before
    args = translated(["fit", "--config", str(config), "--optimizer", "Adam"], "torch")
    assert yaml.safe_load(args[-1]) == {"class_path": "torch.optim.Adam", "init_args": {}}


def test_an_mlx_config_names_the_same_optimizer_and_schedule_on_torch():
    mlx_names = translated(["fit", "--optimizer", "torch.optim.SGD", "--optimizer.lr", "0.05",
                            "--optimizer.momentum", "0.9", "--lr_scheduler", "LinearLR",
                            "--lr_scheduler.start_factor", "0.5"], "mlx")
    back = translated(mlx_names, "torch")
    assert yaml.safe_load(back[2]) == {"class_path": "torch.optim.SGD", "init_args": {
        "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False}}
    assert yaml.safe_load(back[4]) == {"class_path": "torch.optim.lr_scheduler.LinearLR", "init_args": {
        "total_iters": 5, "start_factor": 0.5, "end_factor": 1.0}}
    assert translate("optimizer", {"class_path": "mlx.optimizers.Adam", "init_args": {
        "learning_rate": 0.1, "bias_correction": True}}, "torch") == {
        "class_path": "torch.optim.Adam", "init_args": {"lr": 0.1}}


@pytest.mark.parametrize(("spec", "framework", "line"), [
    ("NAdam", "mlx", "optimizer: torch.optim.NAdam has no exact mlx counterpart; the nearest is mlx.optimizers.Adam"),
    ({"class_path": "SGD", "init_args": {"dampening": 0.5}}, "mlx",
     "optimizer: torch.optim.SGD(dampening=0.5) has no exact mlx counterpart; the nearest is mlx.optimizers.SGD"),
    ("mlx.optimizers.Lion", "torch",
     "optimizer: mlx.optimizers.Lion has no exact torch counterpart; the nearest is torch.optim.AdamW"),
    ({"class_path": "mlx.optimizers.Adam", "init_args": {"learning_rate": 0.1}}, "torch",
     "optimizer: mlx.optimizers.Adam(bias_correction=False) has no exact torch counterpart"),
])
def test_an_optimizer_without_an_equal_on_the_side_that_runs_is_refused_naming_the_nearest(spec, framework, line):
    spec = spec if isinstance(spec, dict) else {"class_path": spec}
    with pytest.raises(ConfigError) as refused:
        translate("optimizer", spec, framework)
    assert str(refused.value).startswith(line)


def _error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert lines[-1].startswith("error: ") and sum(x.startswith("error:") for x in lines) == 1, result.stderr[-3000:]
    return lines[-1]


@pytest.mark.parametrize("framework", ["torch", "mlx"])
@pytest.mark.parametrize(("options", "says"), [
    (("--optimizer", "NoSuchOptimizer"), "NoSuchOptimizer"),
    (("--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "1"), "--lr_scheduler needs an --optimizer"),
    (("--optimizer", "SGD", "--lr_scheduler", "ReduceLROnPlateau"),
     "lr_scheduler: ReduceLROnPlateau needs the metric it watches"),
])
def test_a_bad_optimizer_or_scheduler_is_one_error_line_on_both_sides(framework, options, says, tmp_path):
    result = run_cli("fit", "--framework", framework, "--config", "configs/mnist.yaml",
                     "--trainer.default_root_dir", str(tmp_path), *options)
    assert says in _error_line(result)
    assert not list(tmp_path.rglob("version_*"))


def test_a_torch_scheduler_mlx_cannot_step_is_refused_on_mlx(tmp_path):
    result = run_cli("fit", "--framework", "mlx", "--config", "configs/mnist.yaml", "--trainer.default_root_dir",
                     str(tmp_path), "--optimizer", "SGD", "--lr_scheduler", "ReduceLROnPlateau",
                     "--lr_scheduler.monitor", "val/loss")
    assert _error_line(result).startswith(
        "error: lr_scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau has no exact mlx counterpart")


TINY = ("--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches",
        "1", "--trainer.enable_model_summary", "false", "--trainer.log_every_n_steps", "1",
        "--data.batch_size", "32", "--data.eval_batch_size", "100", "--model.train_accuracy", "false",
        "--trainer.callbacks+", "LearningRateMonitor")


def _optimizer_state(run):
    """The last checkpoint's optimizer: torch's first param group, or MLX's state keys."""
    (last,) = (run / "checkpoints").glob("last.*")
    if last.suffix == ".ckpt":
        group = torch.load(last, weights_only=True)["optimizer_states"][0]["param_groups"][0]
        return {k: v for k, v in group.items() if k in ("lr", "momentum", "dampening", "nesterov")}
    state = CHECKPOINT_IO.load_checkpoint(str(last))["optimizer_states"][0]
    return {key.rsplit(".", 1)[-1] for key in state}


def test_a_step_lr_drops_the_sgd_rate_at_the_same_epochs_on_both_frameworks(tmp_path):
    runs = fit_both(tmp_path, *TINY, "--trainer.max_epochs", "3", "--optimizer", "SGD", "--optimizer.lr", "0.05",
                    "--optimizer.momentum", "0.9", "--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "2",
                    "--lr_scheduler.gamma", "0.5")
    for framework, run in runs.items():
        rates = [(s.step, s.value) for s in read_scalars(run)["lr-SGD"]]
        assert [step for step, _ in rates] == [0, 1, 2], framework
        np.testing.assert_allclose([rate for _, rate in rates], [0.05, 0.05, 0.025], rtol=1e-6)
        note = "note: --optimizer replaces Classifier.configure_optimizers"
        assert note in (tmp_path / f"{framework}.stderr").read_text()
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["optimizer"]["init_args"]["momentum"] == 0.9
    for framework, other in (("torch", "mlx"), ("mlx", "torch")):  # each config.yaml names the other's twins
        args = translated(["fit", "--config", str(runs[framework] / "config.yaml")], other)
        assert yaml.safe_load(args[-3]) == {"class_path": "mlx.optimizers.SGD" if other == "mlx" else "torch.optim.SGD",
                                        "init_args": {"learning_rate" if other == "mlx" else "lr": 0.05,
                                                      "momentum": 0.9, "weight_decay": 0.0, "nesterov": False}}
        rate = "decay_rate" if other == "mlx" else "gamma"
        assert yaml.safe_load(args[-1])["init_args"] == {"step_size": 2, rate: 0.5}
    assert _optimizer_state(runs["torch"]) == {"lr": pytest.approx(0.025), "momentum": 0.9, "dampening": 0.0,
                                               "nesterov": False}
    assert _optimizer_state(runs["mlx"]) == {"v", "step", "learning_rate"}  # SGD's momentum buffer alone


def test_without_an_optimizer_the_models_own_adam_and_schedule_train_on_both_frameworks(tmp_path):
    runs = fit_both(tmp_path, *TINY, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3")
    lr = yaml.safe_load(open("configs/mnist.yaml"))["model"]["lr"]
    expected = [learning_rate_at(step, 3, lr, "cosine") for step in range(3)]
    for framework, run in runs.items():
        rates = [s.value for s in read_scalars(run)["lr-Adam"]]
        np.testing.assert_allclose(rates, expected, rtol=1e-6, err_msg=framework)
        assert "--optimizer" not in (tmp_path / f"{framework}.stderr").read_text()
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["optimizer"] is None and config["lr_scheduler"] is None


def test_a_plateau_scheduler_watching_a_metric_the_model_does_not_log_stops_at_the_first_validation(tmp_path):
    result = run_cli("fit", "--config", "configs/mnist.yaml", "--trainer.default_root_dir", str(tmp_path), *TINY,
                     "--optimizer", "SGD", "--lr_scheduler", "ReduceLROnPlateau", "--lr_scheduler.monitor", "val/nope")
    assert _error_line(result).startswith(
        "error: ReduceLROnPlateau(monitor='val/nope') names a metric the model does not log; it logs: ")
