"""The experiment trackers Lightning users name, on both sides: one config logs a torch and an MLX
run into one MLflow store (a local folder, and a real ``mlflow server``) and into W&B's offline
run folders, with the same metric names and steps; a missing package is one ``error:`` line."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from cnn import schema
from tests.cli_runs import ROOT, run_cli_process
from tests.servers import answers, free_port, poll, serving

FRAMEWORKS = ("torch", "mlx")
WITHOUT_PACKAGES = ROOT / "tests" / "without_packages"
# MLflow 3 refuses a ./mlruns folder unless told it is wanted (it prefers a database store).
MLFLOW_ENV = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
# Two epochs (steps cross an epoch boundary), a train/loss every other step, a test: small.
TRACKER_FIT = ("--model.dropout", "0", "--model.lr", "1e-4", "--trainer.max_epochs", "2",
               "--trainer.limit_train_batches", "4", "--trainer.log_every_n_steps", "2",
               "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
               "--data.batch_size", "32", "--data.eval_batch_size", "200", "--data.val_fraction", "0.01")
needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="mlflow is not installed (the project's optional [mlflow] extra)")
needs_wandb = pytest.mark.skipif(importlib.util.find_spec("wandb") is None,
                                 reason="wandb is not installed (the project's optional [wandb] extra)")


def fit_with_logger(logs: Path, logger: dict, framework: str, env: dict) -> subprocess.CompletedProcess:
    # a process of its own: mlflow and wandb keep process-wide state (active run, W&B's service)
    result = run_cli_process("--framework", framework, "fit", "--config", "configs/mnist.yaml", *TRACKER_FIT,
                             "--trainer.default_root_dir", str(logs), "--trainer.enable_progress_bar", "false",
                             "--trainer.logger", json.dumps(logger), env=env)
    assert result.returncode == 0, f"{framework}: {result.stderr[-4000:]}"
    return result


def steps(history) -> list[int]:
    return [m.step for m in sorted(history, key=lambda m: (m.step, m.timestamp))]


def assert_one_store_holds_both_frameworks(tracking_uri: str, expect_checkpoint: bool) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("cnn")
    runs = {run.data.tags["framework"]: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == set(FRAMEWORKS)
    torch_run, mlx_run = runs["torch"], runs["mlx"]
    assert set(torch_run.data.metrics) == set(mlx_run.data.metrics)
    assert {schema.TRAIN_LOSS, schema.VAL_ACC, schema.TEST_ACC, schema.TEST_LOSS} <= set(mlx_run.data.metrics)
    for name in (schema.TRAIN_LOSS, schema.VAL_ACC, schema.VAL_LOSS, schema.TEST_ACC):
        torch_steps = steps(client.get_metric_history(torch_run.info.run_id, name))
        assert torch_steps == steps(client.get_metric_history(mlx_run.info.run_id, name)), name
    torch_params = {k: v for k, v in torch_run.data.params.items() if k != "_instantiator"}
    assert torch_params.keys() == mlx_run.data.params.keys()
    for key in ("lr", "dropout", "num_classes", "seed"):
        assert torch_params[key] == mlx_run.data.params[key], key
    for run in runs.values():
        assert run.info.status == "FINISHED"
        if not expect_checkpoint:
            continue
        folders = [a.path for a in client.list_artifacts(run.info.run_id) if a.is_dir]
        best = [f for f in folders if {a.path for a in client.list_artifacts(run.info.run_id, f)} >= {
            f"{f}/aliases.txt"} and "'best'" in Path(client.download_artifacts(
                run.info.run_id, f"{f}/aliases.txt")).read_text()]
        assert len(best) == 1, folders
        files = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, best[0])}
        assert {"metadata.yaml", "aliases.txt"} < files
        metadata = yaml.safe_load(Path(client.download_artifacts(run.info.run_id,
                                                                 f"{best[0]}/metadata.yaml")).read_text())
        assert metadata["original_filename"] in files
        assert metadata["Checkpoint"]["monitor"] == schema.VAL_ACC


@pytest.mark.slow  # two fits; the server test below checks the same runs by default, all but the artifact
@needs_mlflow
def test_one_config_logs_both_frameworks_into_one_mlflow_folder_with_the_best_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this test's own reading of the folder
    tracking_uri = f"file:{tmp_path / 'mlruns'}"
    logger = {"class_path": "lightning.pytorch.loggers.MLFlowLogger",
              "init_args": {"experiment_name": "cnn", "tracking_uri": tracking_uri, "log_model": True}}
    for framework in FRAMEWORKS:
        fit_with_logger(tmp_path / "logs", logger, framework, MLFLOW_ENV)
    assert_one_store_holds_both_frameworks(tracking_uri, expect_checkpoint=True)


# what `mlflow server` imports beyond mlflow-skinny (pyproject.toml's [mlflow-server] extra)
MLFLOW_SERVER_PACKAGES = ("mlflow", "flask", "flask_cors", "sqlalchemy", "alembic", "pandas")


@pytest.mark.slow  # a server and two fits: about 20 s
@needs_mlflow
def test_a_real_mlflow_server_receives_both_frameworks_runs(tmp_path):
    # mlflow-skinny logs to a server; running one needs what full mlflow adds (the [mlflow-server]
    # extra), looked for without importing it (seconds of this process); a server that still cannot
    # start fails the poll below
    missing = [name for name in MLFLOW_SERVER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"mlflow cannot run a server here: no {', '.join(missing)} (the [mlflow-server] extra)")
    port = free_port()
    tracking_uri = f"http://127.0.0.1:{port}"

    def health() -> int:
        with urllib.request.urlopen(f"{tracking_uri}/health", timeout=5) as response:
            return response.status

    with serving(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri",
                  f"file:{tmp_path / 'store'}", "--default-artifact-root", str(tmp_path / "artifacts"),
                  "--workers", "1"], env=MLFLOW_ENV) as server:
        status = poll(health, lambda status: status == 200 or server.poll() is not None, seconds=120)
        assert status == 200, "mlflow server did not start"
        logger = {"class_path": "MLFlowLogger", "init_args": {"experiment_name": "cnn", "tracking_uri": tracking_uri}}
        for framework in FRAMEWORKS:
            fit_with_logger(tmp_path / "logs", logger, framework, MLFLOW_ENV)
        assert_one_store_holds_both_frameworks(tracking_uri, expect_checkpoint=False)
    # mlflow serves through a uvicorn process of its own: stopping the server stops that one too
    assert not poll(lambda: answers(port), lambda up: not up, seconds=10, empty=True), \
        f"port {port} still answers after the mlflow server stopped"


# -- W&B's offline run files: LevelDB's log format (32 KiB blocks of CRC-length-type framed records)
# after W&B's 7-byte header, each record a wandb_internal_pb2.Record.
WANDB_HEADER, BLOCK, FULL, FIRST, LAST = 7, 32768, 1, 2, 4


def wandb_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data, records, pending, offset = path.read_bytes(), [], b"", WANDB_HEADER
    while offset + 7 <= len(data):
        if BLOCK - offset % BLOCK < 7:  # a block's tail too short for a header is padding
            offset += BLOCK - offset % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset:offset + 7])
        if kind == 0 and length == 0:
            break
        chunk, offset = data[offset + 7:offset + 7 + length], offset + 7 + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def wandb_history(run_folder: Path) -> dict[str, list[int]]:
    """Metric name -> the ``trainer/global_step`` of each row that logged it."""
    (log,) = run_folder.glob("run-*.wandb")
    out: dict[str, list[int]] = {}
    for record in wandb_records(log):
        if record.WhichOneof("record_type") != "history":
            continue
        row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
        for key in row:
            if not key.startswith("_") and key != "trainer/global_step":
                out.setdefault(key, []).append(row["trainer/global_step"])
    return out


def wandb_config(run_folder: Path) -> dict:
    """The run's config as the records set it (``wandb.config.update``), last value winning."""
    (log,) = run_folder.glob("run-*.wandb")
    config = {}
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        updates = record.config.update if kind == "config" else record.run.config.update if kind == "run" else []
        config.update({item.key: json.loads(item.value_json) for item in updates})
    return config


@pytest.mark.slow  # two fits with W&B's service; for the default suite's time
@needs_wandb
def test_wandb_offline_run_folders_hold_both_frameworks_metrics_at_the_same_steps(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path)}
    env.pop("WANDB_API_KEY", None)
    logger = {"class_path": "lightning.pytorch.loggers.WandbLogger",
              "init_args": {"project": "cnn", "save_dir": str(tmp_path)}}
    folders = {}
    for framework in FRAMEWORKS:
        before = set((tmp_path / "wandb").glob("offline-run-*"))
        fit_with_logger(tmp_path / "logs", logger, framework, env)
        (folders[framework],) = set((tmp_path / "wandb").glob("offline-run-*")) - before
    histories = {framework: wandb_history(folder) for framework, folder in folders.items()}
    assert set(histories["torch"]) == set(histories["mlx"])
    assert {schema.TRAIN_LOSS, schema.VAL_ACC, schema.TEST_ACC, schema.TEST_LOSS} <= set(histories["mlx"])
    for name in histories["torch"]:
        assert histories["torch"][name] == histories["mlx"][name], name
    for framework, folder in folders.items():
        config = wandb_config(folder)
        assert config["lr"] == 1e-4 and config["num_classes"] == 10, config
        run_tags = [list(r.run.tags) for r in wandb_records(next(folder.glob("run-*.wandb")))
                    if r.WhichOneof("record_type") == "run"]
        assert run_tags and framework in run_tags[0], (framework, run_tags)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("logger", "package", "install", "extra"), [
    ("WandbLogger", "wandb", "wandb", "wandb"), ("MLFlowLogger", "mlflow", "mlflow-skinny", "mlflow")])
def test_a_tracker_without_its_package_is_one_error_line_naming_the_extra(tmp_path, framework, logger, package,
                                                                          install, extra):
    env = {**os.environ, "CNN_TEST_WITHOUT": package,
           "PYTHONPATH": os.pathsep.join([str(WITHOUT_PACKAGES), str(ROOT)])}
    # a process of its own: the packages are hidden when Python starts (tests/without_packages)
    result = run_cli_process("--framework", framework, "fit", "--config", "configs/mnist.yaml",
                             "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", logger, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {logger} needs the {package} package, which is not installed: pip install {install} "
        f"(or the project's [{extra}] extra)")
    assert not any(tmp_path.iterdir())  # nothing was started
