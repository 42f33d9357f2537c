"""Mirror of lightning.pytorch.cli: what it gives a run besides parsing, ``SaveConfigCallback``."""

from __future__ import annotations

import os
from typing import Any

from cnn.mx.lightning.callbacks.callback import Callback

from cnn.atomic import write_text


class SaveConfigCallback(Callback):
    """Lightning's ``SaveConfigCallback``: write the parsed config to ``<trainer.log_dir>/config.yaml``
    at the first ``setup``, on rank zero, with every key (``skip_none=False``), atomically.

    Args:
        parser: the jsonargparse parser the config came from (it dumps it).
        config: the parsed config (a ``Namespace``).
        config_filename: the file's name in the log folder.
        overwrite: replace an existing file; otherwise an existing one is a ``RuntimeError``, as in
            Lightning, so a run never silently takes another run's folder.
    """

    def __init__(self, parser: Any, config: Any, config_filename: str = "config.yaml",
                 overwrite: bool = False) -> None:
        self.parser, self.config = parser, config
        self.config_filename, self.overwrite = config_filename, overwrite
        self.already_saved = False

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.already_saved or trainer.log_dir is None:  # None: a logger with no local folder
            return
        path = os.path.join(trainer.log_dir, self.config_filename)
        if not self.overwrite and os.path.isfile(path):
            raise RuntimeError(f"{type(self).__name__} expected {path} to NOT exist. Aborting to avoid "
                               "overwriting results of a previous run.")
        if trainer.is_global_zero:
            os.makedirs(trainer.log_dir, exist_ok=True)
            write_text(path, self.parser.dump(self.config, skip_none=False))
        self.already_saved = True
