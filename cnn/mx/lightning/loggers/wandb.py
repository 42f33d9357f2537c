"""Mirror of lightning.pytorch.loggers.wandb.

``WandbLogger`` for the MLX trainer: what ``lightning.pytorch.loggers.WandbLogger`` sends to
Weights & Biases, so torch and MLX runs of one config land side by side in one project."""

from __future__ import annotations

import json
import os
from argparse import Namespace
from typing import Any, Literal, Mapping, Optional, Union

from cnn.mx.lightning.loggers.logger import VersionedLogger, rank_zero_experiment
from cnn.mx.lightning.loggers.utilities import (
    add_prefix,
    checkpoint_metadata,
    convert_params,
    import_tracker,
    log_new_checkpoints,
    plain_number,
    uploads_each_checkpoint,
)
from cnn.mx.lightning.utilities.rank_zero import rank_zero_only

from cnn.errors import ConfigError

CHECKPOINT_KEYS = ("monitor", "mode", "save_last", "save_top_k", "save_weights_only", "_every_n_train_steps")
STEP_METRIC = "trainer/global_step"


def _json_safe(params: Mapping[str, Any]) -> dict[str, Any]:
    """Callables by name, values JSON cannot hold as their str (Lightning's ``_sanitize_callable_params``
    and ``_convert_json_serializable``)."""
    out = {}
    for key, value in params.items():
        if callable(value) and not isinstance(value, type):
            value = getattr(value, "__name__", str(value))
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = str(value)
        out[key] = value
    return out


class WandbLogger(VersionedLogger):
    """Lightning's ``WandbLogger`` (same arguments, run, config, history and model artifacts), on MLX.

    Args:
        name: the run's display name.
        save_dir: where the local ``wandb/`` folder goes (``dir`` when this is ``None``).
        version: the run id, to resume a run (same as ``id``).
        offline: write the run locally only (``wandb sync`` uploads it later).
        dir: same as ``save_dir``.
        id: same as ``version``.
        anonymous: allow logging without an account.
        project: the project; default ``$WANDB_PROJECT``, else ``lightning_logs``.
        log_model: ``True``: upload the checkpoints at the end of the run (every one as it is
            written when ``save_top_k == -1``); ``"all"``: every checkpoint as it is written.
        experiment: an existing ``wandb`` run to log into.
        prefix: prepended to every metric name as ``<prefix>-<name>``.
        checkpoint_name: the model artifact's name (default ``model-<run id>``).
        add_file_policy: ``"mutable"`` or ``"immutable"``, how checkpoint files are added.
        **kwargs: passed on to ``wandb.init`` (``tags``, ``group``, ``entity``, ``mode``, ...).

    Contract: the run starts on first use of ``experiment`` (``wandb.init``) on rank zero; on other
    ranks ``experiment`` does nothing and no run starts; ``name`` is the
    project, ``version`` the run id, ``save_dir`` the local folder. ``log_metrics`` logs one
    history row with ``trainer/global_step`` set to ``step`` (every metric's step axis);
    ``log_hyperparams`` updates the run's config; ``finalize("success")`` uploads pending
    checkpoints as one ``model`` artifact version each. The run itself ends with the process
    (wandb's exit hook), as in Lightning.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(self, name: Optional[str] = None, save_dir: Union[str, os.PathLike] = ".",
                 version: Optional[str] = None, offline: bool = False,
                 dir: Optional[Union[str, os.PathLike]] = None, id: Optional[str] = None,
                 anonymous: Optional[bool] = None, project: Optional[str] = None,
                 log_model: Union[Literal["all"], bool] = False, experiment: Any = None, prefix: str = "",
                 checkpoint_name: Optional[str] = None,
                 add_file_policy: Literal["mutable", "immutable"] = "mutable", **kwargs: Any) -> None:
        import_tracker("wandb", "WandbLogger", "wandb", "wandb")
        if offline and log_model:
            raise ConfigError(f"WandbLogger: log_model={log_model} and offline={offline} cannot go together: "
                              "an offline run uploads no checkpoint; set offline: false to log the model")
        save_dir = os.fspath(save_dir) if save_dir is not None else None
        dir = os.fspath(dir) if dir is not None else None
        self._wandb_init: dict[str, Any] = {
            "name": name, "project": project or os.environ.get("WANDB_PROJECT", "lightning_logs"),
            "dir": save_dir or dir, "id": version or id, "resume": "allow",
            "anonymous": "allow" if anonymous else None}
        # as Lightning writes it: jsonargparse follows kwargs from here to wandb.init's parameters
        self._wandb_init.update(**kwargs)
        super().__init__(self._wandb_init["dir"] or "", self._wandb_init["project"], self._wandb_init["id"])
        self._offline = offline
        self._log_model = log_model
        self._prefix = prefix
        self._experiment = experiment
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callbacks: dict[int, Any] = {}
        self._checkpoint_name = checkpoint_name
        self.add_file_policy = add_file_policy

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The ``wandb`` run, started on first use (a run already in progress is reused)."""
        if self._experiment is None:
            import wandb

            if self._offline:
                os.environ["WANDB_MODE"] = "dryrun"
            if wandb.run is not None:
                self._experiment = wandb.run
            else:
                self._experiment = wandb.init(**self._wandb_init)
                if self._wandb_init.get("sync_tensorboard"):
                    self._experiment.define_metric("*", step_metric="global_step")
                else:
                    self._experiment.define_metric(STEP_METRIC)
                    self._experiment.define_metric("*", step_metric=STEP_METRIC, step_sync=True)
        return self._experiment

    @property
    def save_dir(self) -> Optional[str]:
        return self._wandb_init["dir"]

    @property
    def name(self) -> Optional[str]:
        """The project."""
        return self._wandb_init["project"]

    @property
    def version(self) -> Optional[str]:
        """The run id (``None`` until the run starts, unless one was given)."""
        return self._experiment.id if self._experiment is not None else self._wandb_init["id"]

    @property
    def log_dir(self) -> Optional[str]:
        """``save_dir``: what Lightning's ``trainer.log_dir`` is for a logger other than TensorBoard and CSV."""
        return self.save_dir

    @rank_zero_only
    def log_hyperparams(self, params: Union[Mapping[str, Any], Namespace, None] = None) -> None:
        self.experiment.config.update(_json_safe(convert_params(params)), allow_val_change=True)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        row = {k: plain_number(v) for k, v in add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR).items()}
        if step is not None and not self._wandb_init.get("sync_tensorboard"):
            row[STEP_METRIC] = step
        self.experiment.log(row)

    @rank_zero_only
    def log_image(self, key: str, images: list[Any], step: Optional[int] = None, **kwargs: Any) -> None:
        """Log ``images`` (arrays, files or PIL images) under ``key``; each keyword argument
        (``caption``, ...) is a list with one value per image, as in Lightning."""
        if not isinstance(images, list):
            raise TypeError(f'Expected a list as "images", found {type(images)}')
        for name, values in kwargs.items():
            if len(values) != len(images):
                raise ValueError(f"Expected {len(images)} items but only found {len(values)} for {name}")
        import wandb

        per_image = [{name: values[i] for name, values in kwargs.items()} for i in range(len(images))]
        self.log_metrics({key: [wandb.Image(image, **extra) for image, extra in zip(images, per_image)]}, step)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """No-op, as Lightning's WandbLogger."""

    def save(self) -> None:
        """Nothing to flush: wandb streams what it is given."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if uploads_each_checkpoint(self._log_model, checkpoint_callback):
            self._scan_and_log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if status != "success" or self._experiment is None:
            return
        for checkpoint_callback in self._checkpoint_callbacks.values():
            self._scan_and_log_checkpoints(checkpoint_callback)

    def _scan_and_log_checkpoints(self, checkpoint_callback: Any) -> None:
        """Each new checkpoint as a version of the ``model`` artifact, aliased ``latest`` (and
        ``best``); the file keeps its own suffix (``model.safetensors``), where Lightning's is
        ``model.ckpt``."""
        import wandb

        def upload(path: str, score: Optional[float], aliases: list[str]) -> None:
            metadata = checkpoint_metadata(checkpoint_callback, path, score, type(checkpoint_callback).__name__,
                                           CHECKPOINT_KEYS)
            if not self._checkpoint_name:
                self._checkpoint_name = f"model-{self.experiment.id}"
            artifact = wandb.Artifact(name=self._checkpoint_name, type="model", metadata=metadata)
            artifact.add_file(path, name="model" + os.path.splitext(path)[1], policy=self.add_file_policy)
            self.experiment.log_artifact(artifact, aliases=aliases)

        log_new_checkpoints(checkpoint_callback, self._logged_model_time, upload)
