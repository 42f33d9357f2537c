"""Both frameworks write the same log schema: tags, step axis, hparams keys; TensorBoard serves both."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from cnn import schema
from cnn.tools.events import read_scalars
from tests.cli_runs import SHORT_FIT_EPOCHS, SHORT_FIT_LOG_EVERY, SHORT_FIT_STEPS_PER_EPOCH


def steps_by_tag(run: Path) -> dict[str, list[int]]:
    return {tag: [s.step for s in series] for tag, series in read_scalars(run).items()}


def test_both_frameworks_log_the_same_tags_at_the_same_steps(short_fits):
    _, runs = short_fits
    torch_steps, mlx_steps = steps_by_tag(runs["torch"]), steps_by_tag(runs["mlx"])
    assert set(torch_steps) == set(mlx_steps)
    assert {schema.TRAIN_LOSS, schema.TRAIN_ACC, schema.VAL_LOSS, schema.VAL_ACC,
            schema.TEST_LOSS, schema.TEST_ACC, schema.EPOCH} <= set(torch_steps)
    assert any(tag.startswith(schema.TEST_CLASS_ACC_PREFIX) for tag in torch_steps)
    for tag in torch_steps:
        assert torch_steps[tag] == mlx_steps[tag], tag


def test_train_loss_is_written_every_n_steps_on_lightnings_step_axis(short_fits):
    # Lightning writes when (batches stepped + 1) % log_every_n_steps == 0, at the batch's index,
    # counting on across epochs: 2, 5, 8 in the first epoch of 10 batches, 11, 14, 17 in the second.
    _, runs = short_fits
    every, total = SHORT_FIT_LOG_EVERY, SHORT_FIT_STEPS_PER_EPOCH * SHORT_FIT_EPOCHS
    expected = [step for step in range(total) if (step + 1) % every == 0]
    for framework, run in runs.items():
        assert steps_by_tag(run)[schema.TRAIN_LOSS] == expected, framework


def test_both_frameworks_write_the_same_hparams_keys(short_fits):
    _, runs = short_fits
    torch_hparams = yaml.safe_load((runs["torch"] / "hparams.yaml").read_text())
    mlx_hparams = yaml.safe_load((runs["mlx"] / "hparams.yaml").read_text())
    # LightningCLI adds its own bookkeeping for load_from_checkpoint; not a hyperparameter.
    torch_hparams.pop("_instantiator", None)
    assert set(torch_hparams) == set(mlx_hparams)
    assert {"lr", "dropout", "num_classes", "classes", "seed"} <= set(torch_hparams)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_a_real_tensorboard_server_serves_both_runs_with_the_logged_values(short_fits):
    logs, runs = short_fits
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", "127.0.0.1",
         "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    names = {f: run.relative_to(logs).as_posix() for f, run in runs.items()}
    try:
        deadline = time.monotonic() + 60
        served: list = []
        while time.monotonic() < deadline and not set(names.values()) <= set(served):
            try:
                served = get_json(f"{base}/data/runs")
            except OSError:
                pass
            time.sleep(0.5)
        assert set(names.values()) <= set(served), served
        for framework, run in runs.items():
            written = read_scalars(run)
            for tag in (schema.TRAIN_LOSS, schema.VAL_ACC, schema.TEST_ACC):
                query = urllib.parse.urlencode({"tag": tag, "run": names[framework]})
                rows = get_json(f"{base}/data/plugin/scalars/scalars?{query}")
                assert [step for _, step, _ in rows] == [s.step for s in written[tag]]
                assert [value for _, _, value in rows] == pytest.approx(
                    [s.value for s in written[tag]]), (framework, tag)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode is not None
