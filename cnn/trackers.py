"""One short check of each experiment tracker's store before anything is built or trained.

MLflow retries a tracking server that refuses for minutes, in silence; W&B waits as long for a
network it cannot reach; an MLflow ``file:`` store that cannot be made ends in a traceback deep
in the logger. ``check_trackers(trainer.logger)`` asks each once, in ``CONNECT_SECONDS`` at most:
a TCP connection to an MLflow ``http(s)`` tracking URI or to W&B's server (unless W&B runs
offline), and the folder of an MLflow ``file:`` store made. What does not answer is one
``ConfigError`` line naming the store and what to do.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from cnn.errors import ConfigError

CONNECT_SECONDS = 5.0  # a store on this network answers in far less; a dead one never does
WANDB_DEFAULT_URL = "https://api.wandb.ai"


def _init_arg(entry, key: str):
    init_args = entry.get("init_args") if isinstance(entry, dict) else getattr(entry, "init_args", None)
    if init_args is None:
        return None
    return init_args.get(key) if isinstance(init_args, dict) else getattr(init_args, key, None)


def _class_name(entry) -> str:
    path = entry.get("class_path", "") if isinstance(entry, dict) else getattr(entry, "class_path", "")
    return str(path).rsplit(".", 1)[-1]


def _answers(url: str) -> str | None:
    """None when something accepts a TCP connection at ``url``'s host and port, else why not."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "localhost", port), timeout=CONNECT_SECONDS):
            return None
    except socket.timeout:
        return f"no answer in {CONNECT_SECONDS:g} s"
    except OSError as error:
        return error.strerror or str(error)


def _check_mlflow(entry) -> None:
    uri = _init_arg(entry, "tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or ""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        why = _answers(uri)
        if why:
            raise ConfigError(f"MLflow: no tracking server answers at {uri} ({why}); start it, or log "
                              "to a folder: --trainer.logger.init_args.tracking_uri file:./mlruns")
    elif scheme == "file":
        folder = urlparse(uri).path
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"MLflow: cannot make the store {uri}: {error.strerror or error} "
                              f"({error.filename or folder}); name a folder you can write") from None


def _check_wandb(entry) -> None:
    offline = _init_arg(entry, "offline") or os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun")
    if offline:
        return
    url = os.environ.get("WANDB_BASE_URL") or WANDB_DEFAULT_URL
    why = _answers(url)
    if why:
        raise ConfigError(f"W&B: cannot reach {url} ({why}); log offline with "
                          "--trainer.logger.init_args.offline true and `wandb sync` later")


CHECKS = {"MLFlowLogger": _check_mlflow, "WandbLogger": _check_wandb}


def check_trackers(logger) -> None:
    """ConfigError unless each tracker in ``logger`` (``trainer.logger``: one class entry, a list
    of them, or a bool) can reach its store (see the module docstring)."""
    for entry in logger if isinstance(logger, list) else [logger]:
        check = CHECKS.get(_class_name(entry))
        if check:
            check(entry)
