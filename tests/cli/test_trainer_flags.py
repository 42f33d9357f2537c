"""Lightning's everyday Trainer flags on both frameworks: through both real CLIs on configs/mnist.yaml each flag
gives the same steps, tags and files on the MLX side as Lightning gives on the torch side (one short fit per flag
and framework, shared by the tests of that flag), and both DataModules honour ``overfit_batches``. The flags'
semantics against Lightning's on a toy module: ``tests/mx/lightning/test_mx_trainer_flags.py``."""

from __future__ import annotations

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.datamodule import DataModule as MxDataModule
from cnn.mx.lightning.trainer import Trainer as MxTrainer

import lightning.pytorch as pl
import numpy as np
import pytest
import yaml

from cnn import schema
from cnn.pt.datamodule import DataModule as PtDataModule
from cnn.tools.events import read_scalars, run_dirs
from tests.cli_runs import run_cli, short_run

# the config's validation split: on short_run's 1% the two sides' second-epoch val/acc of the
# accumulate case fall on either side of the first epoch's, so their best checkpoints differ
BASE = (*short_run(config=None, epochs=2, train_batches=4, val_batches=2, test_batches=2, log_every=1,
                   val_fraction=None),
        # without the epoch-end train-accuracy pass, which reads as many images as that split holds
        # (6,000) whatever the flags say; train/acc's parity is tests/cli/test_both_clis.py's
        "--model.train_accuracy", "false")
CASES = {
    "fast_dev_run": ("--trainer.fast_dev_run", "2"),
    "accumulate_grad_batches": ("--trainer.accumulate_grad_batches", "3"),
    # lr 0 and no dropout: a batch gives the same loss in every epoch, so equal losses mean equal batches
    "overfit_batches": ("--trainer.overfit_batches", "2", "--trainer.profiler", "simple",
                        "--model.lr", "0", "--model.dropout", "0"),
}
# (the semantics of each are also held against Lightning in-process: tests/mx/lightning/test_mx_trainer_flags.py)


@pytest.fixture(scope="module", params=sorted(CASES))
def flag_fit(request, tmp_path_factory):
    """``(case, {framework: (root, stderr)})``: one fit of the case's flags per framework."""
    out = {}
    for framework in ("torch", "mlx"):
        root = tmp_path_factory.mktemp(f"{request.param}-{framework}")
        result = run_cli("--framework", framework, "fit", "--config", "configs/mnist.yaml", *BASE,
                         "--trainer.default_root_dir", str(root), *CASES[request.param])
        assert result.returncode == 0, f"{framework}: {result.stderr[-3000:]}"
        out[framework] = (root, result.stderr)
    return request.param, out


def files(root) -> list[str]:
    """The files a run wrote, with the framework's name, file format and event-file stamps made alike."""
    names = set()
    for path in root.rglob("*"):
        if path.is_file():
            rel = path.relative_to(root).as_posix().replace("/torch/", "/FW/").replace("/mlx/", "/FW/")
            names.add("events" if "tfevents" in rel else rel.replace(".safetensors", ".ckpt"))
    return sorted(names)


def steps(root) -> dict[str, list[int]]:
    return {tag: [s.step for s in series] for run in run_dirs(root) for tag, series in read_scalars(run).items()}


def test_each_flag_writes_the_same_files_and_steps_on_both_frameworks(flag_fit):
    case, runs = flag_fit
    (pt_root, _), (mx_root, _) = runs["torch"], runs["mlx"]
    assert files(mx_root) == files(pt_root)
    assert steps(mx_root) == steps(pt_root)
    if case == "fast_dev_run":  # Lightning logs nothing and keeps only its save_last checkpoint
        assert files(pt_root) == ["checkpoints/last.ckpt"]
    if case == "accumulate_grad_batches":  # 4 batches in steps of 3: two optimizer steps per epoch
        assert steps(pt_root)[schema.TRAIN_LOSS] == [0, 1, 2, 3]


def test_overfit_batches_trains_on_the_same_batches_every_epoch(flag_fit):
    case, runs = flag_fit
    if case != "overfit_batches":
        pytest.skip("overfit_batches only")
    for framework, (root, _) in runs.items():
        (run,) = run_dirs(root)
        losses = [s.value for s in read_scalars(run)[schema.TRAIN_LOSS]]
        assert len(losses) == 4, framework  # 2 batches x 2 epochs
        assert losses[2:] == losses[:2], framework


def test_the_simple_profiler_prints_lightnings_table_on_both_frameworks(flag_fit):
    case, runs = flag_fit
    if case != "overfit_batches":
        pytest.skip("the profiler runs in the overfit_batches fit")
    for framework, (_, stderr) in runs.items():
        assert "FIT Profiler Report" in stderr and "TEST Profiler Report" in stderr, framework
        for action in ("run_training_epoch", "run_training_batch", "[_TrainingEpochLoop].train_dataloader_next",
                       "[Strategy]SingleDeviceStrategy.training_step",
                       "[LightningModule]Classifier.on_train_epoch_end"):
            assert action in stderr, (framework, action)


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_with_overfit_batches_each_epoch_starts_with_the_same_batches(framework, shared_data):
    data_module, trainer = (PtDataModule, pl.Trainer) if framework == "torch" else (MxDataModule, MxTrainer)
    data = data_module(data_dir=str(shared_data / "mnist"), download=False, batch_size=64, seed=3)
    data.trainer = trainer(overfit_batches=2, logger=False, enable_progress_bar=False)
    data.setup("fit")
    loader = data.train_dataloader()
    firsts = []
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        firsts.append([np.asarray(batch[1]) for _, batch in zip(range(2), loader)])
    for a, b in zip(*firsts):
        np.testing.assert_array_equal(a, b)


def test_torchs_detect_anomaly_stop_becomes_the_one_line_error_the_mlx_side_raises():
    import torch

    from cnn.errors import NonFiniteGradientError
    from cnn.pt.cli import anomaly_error

    weight = torch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError) as caught, pytest.warns(UserWarning), torch.autograd.detect_anomaly():
        (torch.sqrt(weight) * 0).sum().backward()  # a finite loss; NaN from sqrt's backward at 0
    error = anomaly_error(caught.value)
    assert isinstance(error, NonFiniteGradientError) and "\n" not in str(error)
    assert str(error).startswith("detect_anomaly: Function 'SqrtBackward0' returned nan values")
    assert anomaly_error(RuntimeError("something else")) is None


def test_a_whole_number_of_batches_stays_a_count_on_both_frameworks(flag_fit):
    # "--trainer.limit_val_batches 2" is two batches, as in Lightning, though the parser may read 2.0;
    # 1 was the case that mattered: as 1.0 it ran the whole validation set
    case, runs = flag_fit
    for framework, (root, _) in runs.items():
        saved = [yaml.safe_load(p.read_text())["trainer"] for p in root.rglob("config.yaml")]
        assert saved or case == "fast_dev_run", framework  # which writes no config.yaml, as Lightning
        assert all(type(t["limit_val_batches"]) is int and t["limit_val_batches"] == 2
                             for t in saved), (framework, saved)
