"""``cli.py bench``: every figure of every variant, its TensorBoard scalars, its clocks, its errors.

Sizes are tiny (batch 16, two timed steps, a 64-image test pass): these tests check what is
measured and reported, not how fast anything is.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnn.bounded_yaml import read_config
from cnn.data.datasets import ImageSet
from cnn.tools import bench, bench_clock, bench_plan, bench_report

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {"torch": ("plain", "lightning"),
            "mlx": ("eager", "compiled", "trainer_eager", "trainer_compiled")}
TRAIN_FIGURES = ("train_img_per_s", "ms_per_step", "fwd_ms", "bwd_ms", "first_step_s", "epoch_s")
TINY = ["--steps", "2", "--warmup", "1", "--repeats", "2", "--batch-sizes", "16",
        "--test-images", "64"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These tests check what is reported, not speed; on a shared 2-core machine torch's
    second thread mostly waits for the CPU, so one thread keeps them fast. Restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    """Real MNIST; a small validation split and eval batch keep the trainers' probes short."""
    path = tmp_path_factory.mktemp("bench") / "tiny.yaml"
    path.write_text("seed_everything: 42\nmodel:\n  lr: 0.002\n  dropout: 0.3\n"
                    "data:\n  dataset: mnist\n  batch_size: 16\n  eval_batch_size: 32\n"
                    "  val_fraction: 0.001\n")
    return path


@pytest.fixture(scope="module")
def both(config, tmp_path_factory):
    """One ``bench --framework both`` run: (exit status, JSON report, what it printed)."""
    out = tmp_path_factory.mktemp("bench-out")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = bench.main(["--config", str(config), *TINY, "--out", str(out / "bench.json"),
                             "--logdir", str(out / "tb")], "both")
    report = json.loads((out / "bench.json").read_text()) if status == 0 else None
    return status, report, stdout.getvalue() + stderr.getvalue()


@pytest.fixture(scope="module")
def settings(config):
    args = bench._parser().parse_args(["--config", str(config), *TINY])
    return bench_plan.read_settings(args, read_config(str(config)))  # as bench.main reads it


def check_figure(figure: dict, repeats: int = 2) -> None:
    assert len(figure["values"]) == repeats
    assert 0 < figure["min"] <= figure["median"] <= figure["max"]


def test_summary_of_repeats_is_their_median_min_and_max():
    assert bench_report.summarize([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0,
                                                "values": [3.0, 1.0, 2.0]}
    assert bench_report.summarize([4.0, 1.0, 3.0, 2.0])["median"] == 2.5  # even count: middle mean
    assert bench_report.summarize([7.0])["min"] == bench_report.summarize([7.0])["max"] == 7.0
    with pytest.raises(ValueError):
        bench_report.summarize([])


def test_both_frameworks_report_every_figure_of_all_variants(both):
    status, report, printed = both
    assert status == 0, printed[-3000:]
    rows = {(r["framework"], r["variant"]): r for r in report["results"]}
    assert set(rows) == {(fw, v) for fw, names in VARIANTS.items() for v in names}
    for (fw, variant), row in rows.items():
        assert row["batch_size"] == 16 and row["epoch_estimated"] is True
        expected = TRAIN_FIGURES if variant != "trainer_compiled" else \
            tuple(f for f in TRAIN_FIGURES if f not in ("fwd_ms", "bwd_ms"))
        assert set(row["figures"]) == set(expected), (fw, variant)
        for figure in row["figures"].values():
            check_figure(figure)
    # One compiled graph has no point between forward and backward: said, not faked.
    assert "fwd_ms and bwd_ms" in rows["mlx", "trainer_compiled"]["not_measured"]
    evals = {(r["framework"], r["variant"]): r for r in report["eval"]}
    assert set(evals) == set(rows)
    for row in evals.values():
        assert row["eval_batch_size"] == 32 and row["test_images"] == 64
        assert set(row["figures"]) == {"eval_img_per_s", "test_set_s"}
        for figure in row["figures"].values():
            check_figure(figure)
    assert {r["name"] for r in report["ratios"]} == {
        "MLX compiled / torch plain", "Lightning / plain", "MLX Trainer compiled / MLX compiled"}
    assert "MLX compiled / torch plain = " in printed and "Lightning / plain = " in printed


def test_report_metadata_says_versions_devices_threads_and_blas(both):
    meta = both[1]["meta"]
    assert {"python", "torch", "lightning", "mlx", "numpy"} <= set(meta["versions"])
    assert all(meta["versions"][k] for k in ("python", "torch", "lightning", "mlx", "numpy"))
    assert meta["cpu_model"] and meta["date"] and meta["command"].startswith("python cli.py bench")
    assert meta["threads"]["os.cpu_count"] >= 1 and meta["torch"]["num_threads"] >= 1
    assert meta["mlx"]["blas"] and meta["mlx"]["device_name"] and meta["torch"]["device_name"]
    assert meta["settings"]["steps"] == 2 and meta["settings"]["batch_sizes"] == [16]
    assert meta["settings"]["lr"] == 0.002


def test_tensorboard_scalars_are_the_medians_at_the_batch_size(both):
    report = both[1]
    accumulator = EventAccumulator(report["tensorboard_dir"], size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    for row in report["results"]:
        for name, figure in row["figures"].items():
            tag = f"bench/{row['framework']}/{row['variant']}/{name}"
            (event,) = accumulator.Scalars(tag)
            assert event.step == 16
            assert event.value == pytest.approx(figure["median"], rel=1e-6)
            tags.discard(tag)
    for row in report["eval"]:
        (event,) = accumulator.Scalars(f"bench/{row['framework']}/{row['variant']}/test_set_s")
        assert event.step == 32
    assert not {t for t in tags if "/eval_img_per_s" not in t and "/test_set_s" not in t}


def test_unknown_framework_exits_2_with_one_line(config, capsys):
    from cnn.cli import main

    assert main(["bench", "--framework", "jax", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == "error: unknown framework 'jax': choose torch, mlx or both"


@pytest.mark.parametrize("argv, message", [
    (["--config", "no/such.yaml"], "error: config file no/such.yaml not found"),
    (["--batch-sizes", "16,x"], "error: --batch-sizes must be positive integers"),
    (["--batch-sizes", "0"], "error: --batch-sizes must be positive integers"),
    (["--steps", "0"], "error: --steps must be at least 1"),
    (["--device", "tpu"], "error: argument --device: invalid choice"),
    (["--precision", "16-mixed"], "error: argument --precision: invalid choice"),
])
def test_user_errors_exit_2_with_one_line(config, capsys, argv, message):
    argv = argv if argv[0] == "--config" else ["--config", str(config), *argv]
    assert bench.main(argv, "torch") == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_asking_for_a_gpu_that_is_not_there_exits_2_with_one_line(config, capsys, framework):
    if framework == "torch":
        import torch
        present = torch.cuda.is_available()
    else:
        from cnn.tools import bench_mlx
        present = bench_mlx.mx.is_available(bench_mlx.mx.gpu)
    if present:
        pytest.skip("this machine has the GPU")
    assert bench.main(["--config", str(config), "--device", "gpu"], framework) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --device gpu, but ") and err.count("\n") == 1


def test_train_clock_reads_synchronised_clocks_at_window_edges_and_skips_epoch_end_work(
        monkeypatch):
    """A trainer's hook sequence with a fake clock: 2 steps of 3 s per epoch, 100 s of
    epoch-end work; warm-up 1, windows of 2 steps. Each edge reading follows a sync."""
    now, events = [0.0], []
    monkeypatch.setattr(bench_clock, "clock", lambda: events.append("clock") or now[0])
    sync = lambda *arrays: events.append("sync")  # noqa: E731
    plan = bench_plan.Plan(warmup=1, steps=2, epoch_steps=2)
    timer = bench_clock.TrainClock(plan, sync, built_at=-1.0)
    batch = (None, np.zeros(16))
    for _epoch in range(4):
        timer.on_train_epoch_start(None, None)
        for i in range(2):
            if timer.step >= plan.total:
                break
            timer.on_train_batch_start(None, None, batch, i)
            now[0] += 1.0
            timer.on_before_backward(None, None, "loss")
            now[0] += 2.0
            timer.on_train_batch_end(None, None, "loss", batch, i)
        timer.on_train_epoch_end(None, None)
        now[0] += 100.0  # the probe: not training
    run = timer.result()
    assert run.first_step_s == 4.0  # from -1 (built) to the end of step 0 at 3
    assert (run.throughput.seconds, run.throughput.steps, run.throughput.images) == (6.0, 2, 32)
    assert run.fwd_s == [1.0, 1.0] and run.bwd_s == [2.0, 2.0]
    assert (run.epoch.seconds, run.epoch.steps) == (6.0, 2)
    assert run.throughput.excluded == 100.0  # steps 1 and 2 lie in different epochs
    readings = [i for i, e in enumerate(events) if e == "clock"]
    assert all(events[i - 1] == "sync" for i in readings)


def test_forward_time_is_subtracted_when_the_step_reruns_it(monkeypatch):
    """MLX loops time the forward alone, then the whole step (which runs it again)."""
    now = [0.0]
    monkeypatch.setattr(bench_clock, "clock", lambda: now[0])
    plan = bench_plan.Plan(warmup=1, steps=1)  # step 0 warm-up, 1 throughput, 2 forward/backward
    timer = bench_clock.TrainClock(plan, lambda *a: None, 0.0, backward_includes_forward=True)
    for k in range(plan.total):
        timer.on_train_batch_start(None, None, (None, [0]), k)
        now[0] += 1.0  # the forward alone
        timer.on_before_backward(None, None, None)
        now[0] += 3.0  # the whole step: forward again, backward, update
        timer.on_train_batch_end(None, None, None, (None, [0]), k)
    assert timer.fwd_s == [1.0] and timer.bwd_s == [2.0]


def test_mlx_loop_evaluates_loss_parameters_and_optimizer_state_before_each_clock_reading(
        settings, monkeypatch):
    from cnn.tools import bench_mlx

    events, real_eval, real_clock = [], bench_mlx.mx.eval, bench_clock.clock

    def spy(*arrays):
        events.append(("eval", arrays))
        real_eval(*arrays)

    monkeypatch.setattr(bench_mlx.mx, "eval", spy)
    monkeypatch.setattr(bench_clock, "clock", lambda: events.append(("clock",)) or real_clock())
    run = bench_mlx.VARIANTS["compiled"][0](settings, 16)
    assert run.throughput.steps == 2 and run.throughput.seconds > 0
    readings = [i for i, e in enumerate(events) if e[0] == "clock"]
    assert all(events[i - 1][0] == "eval" for i in readings[1:])  # the first: model not built
    # Every step: loss and the state [parameters, optimizer state, RNG state], all at once.
    full = [e for e in events if e[0] == "eval" and len(e[1]) == 2 and isinstance(e[1][1], list)]
    assert len(full) == settings.plan(16).total
    params, optimizer_state, rng = full[-1][1][1]
    assert "conv1" in params and {"step", "learning_rate"} <= set(optimizer_state) and rng


def test_torch_waits_for_the_gpu_before_reading_the_clock(monkeypatch):
    import torch

    from cnn.tools import bench_torch

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: calls.append("sync"))
    bench_torch.synchronizer("gpu")()
    bench_torch.synchronizer("cpu")()  # the CPU runs synchronously: nothing to wait for
    assert calls == ["sync"]


def test_full_epoch_times_one_epoch_of_steps_and_images_in_every_kind_of_loop(settings):
    """40 train images, batch 16: 3 steps an epoch (16, 16, 8), the window crossing an epoch
    end, so the trainers' epoch-end work is inside it and must be left out."""
    from cnn.tools import bench_mlx, bench_torch

    data = copy.copy(settings.data)
    train = settings.data.splits["train"]
    data.splits = {**data.splits, "train": ImageSet(train.images[:40], train.labels[:40])}
    small = copy.copy(settings)
    small.data, small.full_epoch = data, True
    assert small.steps_per_epoch(16) == 3
    for train_fn in (bench_torch.VARIANTS["plain"][0], bench_torch.VARIANTS["lightning"][0],
                     bench_mlx.VARIANTS["compiled"][0],
                     bench_mlx.VARIANTS["trainer_compiled"][0]):
        run = train_fn(small, 16)
        assert (run.epoch.steps, run.epoch.images) == (3, 40)
        assert run.epoch.seconds > 0
    figures = bench_report.train_figures([run], small)
    assert figures["epoch_s"]["median"] == run.epoch.seconds


def test_mlx_half_never_imports_torch(tmp_path):
    code = ("import sys; from cnn.tools import bench, bench_mlx, bench_report; "
            "report = {'results': [{'framework': 'mlx', 'variant': 'compiled', 'batch_size': 8, "
            "'figures': {'train_img_per_s': {'median': 1.0}}}], 'eval': []}; "
            f"bench_report.write_scalars(__import__('pathlib').Path({str(tmp_path)!r}), report); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_torch_half_takes_the_torch_switches_and_never_imports_mlx(config, tmp_path):
    """What scripts/bench_gpu.sh runs, on the CPU and tiny: a machine without MLX can run it."""
    out = tmp_path / "bench.json"
    argv = ["bench", "--framework", "torch", "--config", str(config), "--steps", "1",
            "--warmup", "0", "--repeats", "1", "--batch-sizes", "16", "--test-images", "32",
            "--no-channels-last", "--precision", "bf16-mixed", "--out", str(out),
            "--logdir", str(tmp_path / "tb")]
    code = ("import sys; from cnn.cli import main; status = main(sys.argv[1:]); "
            "loaded = [m for m in sys.modules if m.split('.')[0] == 'mlx' "
            "or m.startswith('cnn.mx')]; "
            "assert not loaded, loaded; sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {(r["framework"], r["variant"]) for r in report["results"]} == {
        ("torch", "plain"), ("torch", "lightning")}
    settings = report["meta"]["settings"]
    assert (settings["channels_last"], settings["compile"], settings["precision"]) == (
        False, False, "bf16-mixed")
    assert "Lightning / plain = " in result.stdout


@pytest.mark.slow
def test_fit_memory_reports_peak_resident_memory_and_wall_time(config, tmp_path):
    out = tmp_path / "bench.json"
    status = bench.main(["--config", str(config), "--steps", "1", "--warmup", "0", "--repeats",
                         "1", "--test-images", "32", "--out", str(out), "--logdir",
                         str(tmp_path / "tb"), "--fit-memory",
                         "--fit-arg=--trainer.limit_train_batches=2",
                         "--fit-arg=--trainer.limit_val_batches=1"], "both")
    assert status == 0
    runs = json.loads(out.read_text())["fit_memory"]
    assert [r["framework"] for r in runs] == ["torch", "mlx"]
    for run in runs:
        assert run["returncode"] == 0 and run["peak_rss_mib"] > 50 and run["wall_s"] > 0
        assert run["peak_rss_source"] == ("VmHWM" if sys.platform.startswith("linux") else "ru_maxrss")


def child_peaks(peak: Path) -> tuple[int, int]:
    """KiB: a fresh Python's own peak as ``write_peak_rss`` reports it, and its ``ru_maxrss``."""
    child = subprocess.Popen([sys.executable, "-c", "import atexit; from cnn.tools.bench_memory import "
                              f"write_peak_rss; atexit.register(write_peak_rss, {str(peak)!r})"])
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return int(peak.read_text()), usage.ru_maxrss


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status is Linux's")
def test_a_child_reports_its_own_peak_not_the_large_parent_it_was_forked_from(tmp_path):
    # why fit_memory reads VmHWM: ru_maxrss survives fork and exec
    alone, _ = child_peaks(tmp_path / "alone")  # what such a child reaches on this machine
    ballast_kib = 2 * alone + 64 * 1024  # resident in this (parent) process: well above that
    ballast = np.ones(ballast_kib * 1024 // 8)
    own, inherited = child_peaks(tmp_path / "peak")
    assert own < ballast_kib <= inherited
    del ballast
