"""Mirror of lightning.pytorch.loggers.mlflow.

``MLFlowLogger`` for the MLX trainer: what ``lightning.pytorch.loggers.MLFlowLogger`` writes to an
MLflow tracking store, so torch and MLX runs of one config land side by side in one experiment."""

from __future__ import annotations

import os
import re
import tempfile
import time
from argparse import Namespace
from typing import Any, Literal, Mapping, Optional, Union

from cnn.mx.lightning.loggers.logger import VersionedLogger, rank_zero_experiment
from cnn.mx.lightning.loggers.utilities import (
    add_prefix,
    checkpoint_metadata,
    convert_params,
    flatten_dict,
    import_tracker,
    log_new_checkpoints,
    plain_number,
    uploads_each_checkpoint,
)
from cnn.mx.lightning.utilities.rank_zero import rank_zero_only

import yaml

LOCAL_FILE_URI_PREFIX = "file:"
# MLflow's limits: a parameter value's length, and the entries one log_batch call may carry.
PARAM_VALUE_LIMIT, PARAMS_PER_BATCH = 250, 100
CHECKPOINT_KEYS = ("monitor", "mode", "save_last", "save_top_k", "save_weights_only", "_every_n_train_steps",
                   "_every_n_val_epochs")


class MLFlowLogger(VersionedLogger):
    """Lightning's ``MLFlowLogger`` (same arguments, runs, metrics, params and artifacts), on MLX.

    Args:
        experiment_name: the MLflow experiment, created when missing.
        run_name: the run's name (its ``mlflow.runName`` tag).
        tracking_uri: the tracking store or server (``file:./mlruns``, ``http://127.0.0.1:5000``);
            default ``$MLFLOW_TRACKING_URI``, else ``file:<save_dir>``.
        tags: run tags (the CLI adds ``framework``).
        save_dir: the local store when no ``tracking_uri`` is given.
        log_model: ``True``: upload the checkpoints at the end of the run (every one as it is
            written when ``save_top_k == -1``); ``"all"``: every checkpoint as it is written.
        prefix: prepended to every metric name as ``<prefix>-<name>``.
        artifact_location: where a newly created experiment keeps its artifacts.
        run_id: log into this existing run instead of starting one.
        synchronous: block on every logging call (``None``: MLflow's default).

    Contract: the run starts on first use of ``experiment`` (an ``MlflowClient``) on rank zero; on
    other ranks ``experiment`` does nothing and no run starts (``name``/``version`` are None); ``name`` is the
    experiment id, ``version`` the run id, ``save_dir`` the local store's path (``None`` for a
    server). ``log_metrics`` logs one batch of metrics at ``step`` (names stripped of characters
    MLflow refuses); ``log_hyperparams`` logs the flattened params as strings; ``finalize``
    uploads pending checkpoints and ends the run ``FINISHED`` or ``FAILED``.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(self, experiment_name: str = "lightning_logs", run_name: Optional[str] = None,
                 tracking_uri: Optional[str] = os.getenv("MLFLOW_TRACKING_URI"),
                 tags: Optional[dict[str, Any]] = None, save_dir: Optional[str] = "./mlruns",
                 log_model: Literal[True, False, "all"] = False, prefix: str = "",
                 artifact_location: Optional[str] = None, run_id: Optional[str] = None,
                 synchronous: Optional[bool] = None) -> None:
        import_tracker("mlflow", "MLFlowLogger", "mlflow-skinny", "mlflow")
        if not tracking_uri:
            tracking_uri = f"{LOCAL_FILE_URI_PREFIX}{save_dir}"
        super().__init__(save_dir or "", experiment_name, run_id)
        self._experiment_name = experiment_name
        self._experiment_id: Optional[str] = None
        self._tracking_uri = tracking_uri
        self._run_name = run_name
        self._run_id = run_id
        self.tags = tags
        self._log_model = log_model
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callback: Any = None
        self._prefix = prefix
        self._artifact_location = artifact_location
        self._log_batch_kwargs = {} if synchronous is None else {"synchronous": synchronous}
        self._initialized = False
        # made on first use, not here as Lightning does: a store MLflow refuses then fails the run
        # with MLflow's own error, where jsonargparse would fold it into a line about types
        self._mlflow_client: Any = None

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The ``MlflowClient``; the experiment and run are created on first use, as in Lightning."""
        if self._initialized:
            return self._mlflow_client
        import mlflow
        from mlflow.tracking import MlflowClient
        from mlflow.tracking.context.registry import resolve_tags
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

        client = self._mlflow_client = self._mlflow_client or MlflowClient(self._tracking_uri)
        mlflow.set_tracking_uri(self._tracking_uri)
        if self._run_id is not None:
            self._experiment_id = client.get_run(self._run_id).info.experiment_id
            self._initialized = True
            return client
        if self._experiment_id is None:
            found = client.get_experiment_by_name(self._experiment_name)
            if found is not None and found.lifecycle_stage != "deleted":
                self._experiment_id = found.experiment_id
            else:
                self._experiment_id = client.create_experiment(name=self._experiment_name,
                                                               artifact_location=self._artifact_location)
        if self._run_name is not None:
            self.tags = {**(self.tags or {}), MLFLOW_RUN_NAME: self._run_name}
        run = client.create_run(experiment_id=self._experiment_id, tags=resolve_tags(self.tags))
        self._run_id = run.info.run_id
        self._initialized = True
        return client

    @property
    def run_id(self) -> Optional[str]:
        _ = self.experiment
        return self._run_id

    @property
    def experiment_id(self) -> Optional[str]:
        _ = self.experiment
        return self._experiment_id

    @property
    def save_dir(self) -> Optional[str]:
        """The local store's directory, or ``None`` when the tracking URI is not a ``file:`` one."""
        if self._tracking_uri.startswith(LOCAL_FILE_URI_PREFIX):
            return self._tracking_uri[len(LOCAL_FILE_URI_PREFIX):]
        return None

    @property
    def name(self) -> Optional[str]:
        """The experiment id (Lightning's checkpoints go to ``save_dir/<experiment id>/<run id>/checkpoints``)."""
        return self.experiment_id

    @property
    def version(self) -> Optional[str]:
        """The run id."""
        return self.run_id

    @property
    def log_dir(self) -> Optional[str]:
        """``save_dir``: what Lightning's ``trainer.log_dir`` is for a logger other than TensorBoard and CSV."""
        return self.save_dir

    @rank_zero_only
    def log_hyperparams(self, params: Union[Mapping[str, Any], Namespace, None] = None) -> None:
        from mlflow.entities import Param

        flat = flatten_dict(convert_params(params))
        entries = [Param(key=k, value=str(v)[:PARAM_VALUE_LIMIT]) for k, v in flat.items()]
        for start in range(0, len(entries), PARAMS_PER_BATCH):
            self.experiment.log_batch(run_id=self.run_id, params=entries[start:start + PARAMS_PER_BATCH],
                                      **self._log_batch_kwargs)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        from mlflow.entities import Metric

        timestamp_ms = int(time.time() * 1000)
        entries = []
        for key, value in add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR).items():
            if isinstance(value, str):  # Lightning discards these with a warning
                continue
            key = re.sub("[^a-zA-Z0-9_/. -]+", "", key)  # the characters MLflow accepts
            entries.append(Metric(key=key, value=float(plain_number(value)), timestamp=timestamp_ms,
                                  step=step or 0))
        self.experiment.log_batch(run_id=self.run_id, metrics=entries, **self._log_batch_kwargs)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """No-op, as Lightning's MLFlowLogger."""

    def save(self) -> None:
        """Nothing to flush: every call above has reached the store when it returns."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if uploads_each_checkpoint(self._log_model, checkpoint_callback):
            self._scan_and_log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callback = checkpoint_callback

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if not self._initialized:
            return
        status = {"success": "FINISHED", "failed": "FAILED", "finished": "FINISHED"}.get(status, status)
        if self._checkpoint_callback:
            self._scan_and_log_checkpoints(self._checkpoint_callback)
        if self.experiment.get_run(self.run_id):
            self.experiment.set_terminated(self.run_id, status)

    def _scan_and_log_checkpoints(self, checkpoint_callback: Any) -> None:
        """Each new checkpoint as the artifact folder ``<file stem>/``, with ``metadata.yaml`` and
        ``aliases.txt`` (``['latest', 'best']`` for the best one) beside it, as Lightning uploads them."""
        def upload(path: str, score: Optional[float], aliases: list[str]) -> None:
            artifact_path = os.path.splitext(os.path.basename(path))[0]
            self.experiment.log_artifact(self._run_id, path, artifact_path)
            with tempfile.TemporaryDirectory() as tmp_dir:
                metadata = checkpoint_metadata(checkpoint_callback, path, score, "Checkpoint", CHECKPOINT_KEYS)
                with open(os.path.join(tmp_dir, "metadata.yaml"), "w", encoding="utf-8") as file:
                    yaml.safe_dump(metadata, file, default_flow_style=False)
                with open(os.path.join(tmp_dir, "aliases.txt"), "w", encoding="utf-8") as file:
                    file.write(str(aliases))
                self.experiment.log_artifacts(self._run_id, tmp_dir, artifact_path)

        log_new_checkpoints(checkpoint_callback, self._logged_model_time, upload)
