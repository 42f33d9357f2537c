"""Data-parallel training on two local CPU processes, checked against one process.

torch: Lightning's ``ddp`` strategy launches the second process itself (gloo on CPU).
MLX: ``python cli.py launch -n 2 --backend ring`` (``mlx.launch``'s code) starts both over loopback (``MLX_RANK`` +
a host file).

The reference is one process with twice the per-rank batch: rank r takes positions r, r + 2, ...
of the same global order, so the two ranks' batches together are exactly its batch, and the mean
of their mean gradients is its mean gradient. With dropout off the final weights must agree up to
float rounding: Adam divides by sqrt(v), which amplifies rounding where gradients are ~0, hence an
absolute tolerance of 2e-4, a tenth of one Adam step at lr 2e-3 (measured after these 28 steps:
4.5e-5 for MLX, 1.5e-5 for torch), where other batches would move weights by whole steps. The epoch
values synced over the ranks (val/test loss and accuracy, train/acc, per-class test accuracy from
the gathered predictions) must agree with the one process's: the evaluation batch is halved too,
so both see the same images.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cnn.tools.events import read_scalars, run_dirs
from tests.cli_runs import ROOT, run_cli, run_cli_process, short_run

# 2 epochs of 14 batches: enough to leave chance level (val/acc ~0.75), so that accuracies tell the
# ranks' shares apart. A fraction, not a count: int(0.008 x len()) is 14 only if len() is the
# per-rank number of batches (1857 of 16 out of 59400 / 2 images, as 1857 of 32 for one process;
# 3713 if unsharded), and estimated_stepping_batches, hence the cosine schedule, follows it. Validation is 1 % (600
# images), so is the train-accuracy probe; 2 evaluation batches of 90 per rank.
TINY = [*short_run(epochs=2, train_batches=0.008, val_batches=2, test_batches=2, log_every=1, batch_size=None,
                  eval_batch_size=None, val_fraction=0.01), "--model.dropout", "0"]
PER_RANK = ["--data.batch_size", "16", "--data.eval_batch_size", "90"]
ONE_PROCESS = ["--data.batch_size", "32", "--data.eval_batch_size", "180"]
# Logged over all ranks (sync_dist / torchmetrics / all_gather): must equal the single run's.
SYNCED = ("val/loss", "val/acc", "train/acc", "test/loss", "test/acc")
ATOL, RTOL = 2e-4, 1e-4


def free_port_run(n: int) -> int:
    """A port p with p .. p + n - 1 free on loopback (the ring backend listens on one per rank)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + n > 65535:
            continue
        try:
            for p in range(port, port + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    raise RuntimeError("no free run of ports on 127.0.0.1")


def mlx_launch(*args: str, n: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python cli.py launch -n N --backend ring ARGS`` on localhost (ARGS: a trainer command, as the README
    starts one, or ``-- PROGRAM ...``): ``mlx.launch``'s code, exiting with the first failed rank's status
    (``cnn.tools.launch``). On a timeout the whole process group (launcher and ranks) is killed, so no rank is
    left waiting on its peer.
    """
    command = [sys.executable, str(ROOT / "cli.py"), "launch", "-n", str(n), "--backend", "ring",
               "--starting-port", str(free_port_run(n)), *args]
    # A script's own folder, not the cwd, heads sys.path: name this tree, not an installed copy.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"launch timed out after {timeout} s:\n{err[-4000:]}") from None
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def torch_weights(path: Path) -> dict[str, np.ndarray]:
    import torch

    state = torch.load(path, weights_only=True)["state_dict"]
    return {k: v.numpy() for k, v in state.items() if k.startswith("net.")}


def mlx_weights(path: Path) -> dict[str, np.ndarray]:
    import mlx.core as mx

    return {k.removeprefix("model."): np.array(v) for k, v in mx.load(str(path)).items()
            if k.startswith("model.net.")}


def torch_initial() -> dict[str, np.ndarray]:
    """The weights fit starts from with ``seed_everything: 42``, named and laid out as saved."""
    from cnn.pt.model import SeedCNN

    return {f"net.{k}": v for k, v in SeedCNN(1, 28, 10, 0.0, 42).numpy_weights().items()}


def mlx_initial() -> dict[str, np.ndarray]:
    from cnn.mx.model import SeedCNN

    from mlx.utils import tree_flatten

    return {f"net.{k}": np.array(v) for k, v in tree_flatten(SeedCNN(1, 28, 10, 0.0, 42).parameters())}


def final_values(run: Path) -> dict[str, float]:
    return {tag: values[-1].value for tag, values in read_scalars(run).items()
            if tag in SYNCED or tag.startswith("test/acc_class/")}


def assert_one_run(logs: Path, framework: str, suffix: str) -> Path:
    """One ``version_0`` holding all event files, one checkpoint folder with best + last."""
    (run,) = run_dirs(logs)
    assert run == logs / "mnist" / framework / "version_0"
    assert [p.name for p in (logs / "mnist" / framework).iterdir()] == ["version_0"]
    assert sorted(p.name for p in logs.iterdir()) == ["mnist"]
    folder = run / "checkpoints"
    best, last = sorted(p.name for p in folder.glob(f"*{suffix}"))
    assert best.startswith("epoch=") and last == "last" + suffix
    assert sorted(p.name for p in folder.iterdir()) == sorted([best, last, f"{best}.confusion.png"])
    return run


def assert_same_training(ddp: Path, single: Path, weights, initial, suffix: str) -> None:
    a = weights(ddp / "checkpoints" / f"last{suffix}")
    b = weights(single / "checkpoints" / f"last{suffix}")
    assert set(a) == set(b) and a
    initial = initial()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=RTOL, atol=ATOL, err_msg=name)
        # and not because nothing moved: 28 Adam steps took every tensor far beyond the tolerance
        assert np.abs(b[name] - initial[name]).max() > 10 * ATOL, name
    synced, reference = final_values(ddp), final_values(single)
    assert set(SYNCED) <= set(reference) and len(reference) == len(SYNCED) + 10
    assert synced.keys() == reference.keys()
    for tag, value in reference.items():
        assert synced[tag] == pytest.approx(value, rel=1e-5, abs=1e-6), tag


# ---------------------------------------------------------------------------------------------------- torch
@pytest.fixture(scope="module")
def torch_ddp(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    logs = tmp_path_factory.mktemp("torch-ddp")
    # a process of its own: Lightning starts rank 1 by running this process's __main__ again
    result = run_cli_process("fit", *TINY, *PER_RANK, "--trainer.default_root_dir", str(logs),
                             "--trainer.strategy", "ddp", "--trainer.devices", "2",
                             "--trainer.accelerator", "cpu")
    assert result.returncode == 0, result.stderr[-4000:]
    return logs, result


def test_torch_ddp_leaves_one_log_dir_and_one_checkpoint_set(torch_ddp):
    logs, result = torch_ddp
    assert_one_run(logs, "torch", ".ckpt")
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr
    assert "sync_dist=True" not in result.stderr  # Lightning's hint: every epoch value is synced
    assert result.stdout.count("test/acc ") == 1  # rank zero alone prints the results table


@pytest.mark.slow  # one more torch process, 15-40 s on two shared cores; the MLX twin runs by default
def test_torch_ddp_matches_one_process_with_twice_the_batch(torch_ddp, tmp_path):
    single = run_cli("fit", *TINY, *ONE_PROCESS, "--trainer.default_root_dir", str(tmp_path),
                     "--trainer.accelerator", "cpu")
    assert single.returncode == 0, single.stderr[-4000:]
    assert_same_training(assert_one_run(torch_ddp[0], "torch", ".ckpt"),
                         assert_one_run(tmp_path, "torch", ".ckpt"),
                         torch_weights, torch_initial, ".ckpt")


# ------------------------------------------------------------------------------------------------------ MLX
@pytest.fixture(scope="module")
def mlx_ddp(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    logs = tmp_path_factory.mktemp("mlx-ddp")
    result = mlx_launch("fit", *TINY, *PER_RANK,
                        "--trainer.default_root_dir", str(logs), "--trainer.accelerator", "cpu")
    assert result.returncode == 0, result.stderr[-4000:]
    return logs, result


def test_mlx_ddp_leaves_one_log_dir_and_one_checkpoint_set(mlx_ddp):
    logs, result = mlx_ddp
    assert_one_run(logs, "mlx", ".safetensors")
    assert result.stdout.count("test/acc ") == 1  # rank zero alone prints the results table


def test_mlx_ddp_matches_one_process_with_twice_the_batch(mlx_ddp, tmp_path):
    single = run_cli("fit", "--framework", "mlx", *TINY, *ONE_PROCESS,
                     "--trainer.default_root_dir", str(tmp_path), "--trainer.accelerator", "cpu")
    assert single.returncode == 0, single.stderr[-4000:]
    assert_same_training(assert_one_run(mlx_ddp[0], "mlx", ".safetensors"),
                         assert_one_run(tmp_path, "mlx", ".safetensors"),
                         mlx_weights, mlx_initial, ".safetensors")


RANK_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import mlx.core as mx, mlx.nn as nn, mlx.optimizers as optim
    from cnn.errors import NonFiniteLossError
    from cnn.mx.lightning.core.module import LightningModule
    from cnn.mx.lightning.trainer import Trainer

    class Toy(LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(3, 1)
        def training_step(self, batch, batch_idx):
            x, y = batch
            return ((self.layer(x)[:, 0] - y) ** 2).mean()
        def on_train_epoch_end(self):
            r = float(self.global_rank)
            self.log("sum", r + 1, reduce_fx="sum", sync_dist=True)
            self.log("max", r, reduce_fx="max", sync_dist=True)
            self.log("min", r, reduce_fx="min", sync_dist=True)
            self.log("mean", r, batch_size=int(r) + 1, sync_dist=True)  # (0 x 1 + 1 x 2) / 3
            self.log("local", r)
        def configure_optimizers(self):
            return optim.Adam(learning_rate=0.1)

    class ManualToy(Toy):
        \"\"\"The same steps under manual optimization, through manual_backward and the wrapped optimizer.\"\"\"
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
        def training_step(self, batch, batch_idx):
            x, y = batch
            loss_fn = lambda layer: ((layer(x)[:, 0] - y) ** 2).mean()
            _, grads = self.manual_backward(loss_fn, self.layer, module=self.layer)
            self.optimizers().update(self.layer, grads)

    def fit(rank, world, nan=False, manual=False):
        \"\"\"4 Adam steps (compiled, or manual ones) on this rank's rows (r, r + world, ...) of 4 batches of 8.\"\"\"
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(4, 8, 3)).astype(np.float32), rng.normal(size=(4, 8)).astype(np.float32)
        if nan:
            x[2, 1, 0] = np.nan  # in rank 1's third batch only
        data = [(mx.array(x[i, rank::world]), mx.array(y[i, rank::world])) for i in range(4)]
        mx.random.seed(0)
        model = ManualToy() if manual else Toy()
        trainer = Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, accelerator="cpu", compile=True)
        try:
            trainer.fit(model, train_dataloaders=data)
            out = {k: float(v) for k, v in trainer.callback_metrics.items()}
        except NonFiniteLossError as error:
            out = {"nan": str(error)}
        out["step"] = trainer.global_step
        out["weights"] = np.array(model.layer.weight).ravel().tolist() + np.array(model.layer.bias).tolist()
        return out

    if __name__ == "__main__":
        import mlx.core as mx
        group = mx.distributed.init()
        out = fit(group.rank(), group.size(), nan=sys.argv[1] == "nan", manual=sys.argv[1] == "manual")
        print("RESULT", group.rank(), group.size(), json.dumps(out), flush=True)
""")


@pytest.mark.parametrize("case", ["sync", "nan", "manual"])
def test_mlx_trainer_averages_gradients_syncs_values_and_stops_all_ranks_on_one_nan(tmp_path, case):
    """Two ranks of a toy regression through ``mlx.launch``: their compiled steps (and their manual steps through
    ``manual_backward``) land on the weights of one process that saw both halves of every batch; ``sync_dist``
    reduces as Lightning does; a NaN on rank 1 alone stops both ranks at the same step (rank 0 does not wait
    forever)."""
    script = tmp_path / "toy.py"
    script.write_text(RANK_SCRIPT)
    result = mlx_launch("--python", sys.executable, "--", str(script), case, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = sorted(line.split(" ", 3)[1:] for line in result.stdout.splitlines()
                  if line.startswith("RESULT"))
    assert [(rank, size) for rank, size, _ in rows] == [("0", "2"), ("1", "2")]
    outs = [json.loads(out) for _, _, out in rows]
    if case == "nan":
        assert [out["step"] for out in outs] == [2, 2]
        assert all("not finite on 1 of 2 ranks" in out["nan"] for out in outs)
        return
    reference = runpy.run_path(str(script), run_name="toy")["fit"](0, 1, manual=case == "manual")
    for rank, out in enumerate(outs):
        assert out["step"] == 4
        np.testing.assert_allclose(out["weights"], reference["weights"], rtol=1e-5, atol=1e-6)
        assert out["sum"] == 3.0 and out["max"] == 1.0 and out["min"] == 0.0
        assert out["mean"] == pytest.approx(2 / 3) and out["local"] == float(rank)
    assert np.abs(np.subtract(reference["weights"], fit_untrained(script))).max() > 0.1


def fit_untrained(script: Path) -> list[float]:
    import mlx.core as mx

    mx.random.seed(0)
    layer = runpy.run_path(str(script), run_name="toy")["Toy"]().layer
    return np.array(layer.weight).ravel().tolist() + np.array(layer.bias).tolist()


# -------------------------------------------------------------------------------------------- one process
def test_the_mlx_trainer_alone_is_rank_zero_of_one_and_points_to_mlx_launch():
    from cnn.mx.lightning.trainer import Trainer

    trainer = Trainer(strategy="ddp", logger=False, enable_progress_bar=False)
    assert (trainer.world_size, trainer.global_rank, trainer.is_global_zero) == (1, 0, True)
    with pytest.raises(ValueError, match="mlx.launch -n N"):
        Trainer(devices=2)


def test_other_ranks_loggers_write_nothing_and_share_rank_zeros_version(tmp_path):
    from cnn.mx.lightning.loggers import TensorBoardLogger
    from cnn.mx.lightning.utilities.rank_zero import RankZeroOnlyLogger

    logger = TensorBoardLogger(tmp_path, name="mnist/mlx")
    logger.share_version(3)  # what the trainer does with rank zero's version
    view = RankZeroOnlyLogger(logger)
    view.log_hyperparams({"lr": 1.0})
    view.log_metrics({"val/acc": 0.5}, step=1)
    view.experiment.add_event(None)
    view.save()
    view.finalize("success")
    assert view.log_dir == str(tmp_path / "mnist/mlx/version_3") and view.version == 3
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_a_tracker_logger_on_a_rank_other_than_zero_starts_no_run(tracker, tmp_path, monkeypatch):
    """Lightning's ``rank_zero_experiment``: on rank 1 (the mirror's ``rank_zero_only.rank``, which the Trainer
    sets from its group) what the trainer and the CLI ask of a logger (name, version, writes, finalize) starts no
    MLflow or W&B run; only rank zero's run exists."""
    pytest.importorskip(tracker)
    from cnn.mx.lightning.utilities.rank_zero import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    store = tmp_path / "store"
    if tracker == "mlflow":
        from cnn.mx.lightning.loggers import MLFlowLogger

        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        logger = MLFlowLogger(experiment_name="mnist", tracking_uri=f"file:{store}")
    else:
        from cnn.mx.lightning.loggers import WandbLogger

        monkeypatch.setenv("WANDB_SILENT", "true")
        logger = WandbLogger(save_dir=str(store), offline=True)
    assert logger.version is None
    _ = logger.name, logger.log_dir
    logger.log_hyperparams({"lr": 1.0})
    logger.log_metrics({"val/acc": 0.5}, step=1)
    logger.finalize("success")
    assert sorted(store.rglob("*")) == []


def test_mlx_datamodule_takes_its_shard_from_the_trainer():
    from types import SimpleNamespace

    from cnn.mx.datamodule import DataModule

    shards = []
    for rank in (0, 1):
        data = DataModule(batch_size=8, val_fraction=0.01)
        data.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        data.setup("fit")
        loader = data.train_dataloader()
        shard = -(-len(data.data.splits["train"].labels) // 2)
        assert len(loader) == -(-shard // 8)
        shards.append(np.array(next(iter(loader))[1]))
    whole = DataModule(batch_size=16, val_fraction=0.01)
    whole.setup("fit")
    (_, labels), = [next(iter(whole.train_dataloader()))]
    np.testing.assert_array_equal(np.array(labels)[0::2], shards[0])
    np.testing.assert_array_equal(np.array(labels)[1::2], shards[1])
