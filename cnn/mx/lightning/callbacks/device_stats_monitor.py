"""Mirror of lightning.pytorch.callbacks.device_stats_monitor: ``DeviceStatsMonitor``, MLX's memory counters
logged like Lightning's."""

from __future__ import annotations

import importlib.util
from typing import Any, Optional

from cnn.mx.lightning.callbacks.callback import Callback

import mlx.core as mx

from cnn.errors import ConfigError


def device_stats() -> dict[str, float]:
    """MLX's allocator counters, in bytes: memory held by live arrays, the most ever held since the
    start (or the last ``mx.reset_peak_memory``), and freed memory kept cached for reuse."""
    return {"active_memory_bytes": float(mx.get_active_memory()),
            "peak_memory_bytes": float(mx.get_peak_memory()),
            "cache_memory_bytes": float(mx.get_cache_memory())}


def cpu_stats() -> dict[str, float]:
    """Lightning's ``get_cpu_stats`` (needs ``psutil``): memory, CPU and swap use in percent."""
    import psutil

    return {"cpu_vm_percent": psutil.virtual_memory().percent, "cpu_percent": psutil.cpu_percent(),
            "cpu_swap_percent": psutil.swap_memory().percent}


class DeviceStatsMonitor(Callback):
    """Lightning's ``DeviceStatsMonitor``: at the start and end of every training, validation and
    test batch whose metrics Lightning would write (``log_every_n_steps``), log :func:`device_stats`
    as ``DeviceStatsMonitor.<hook>/<stat>`` at the logger step. MLX's counters cover whichever device
    MLX runs on (one allocator), so they are logged on the CPU too.

    Args:
        cpu_stats: also log :func:`cpu_stats` (``True``; needs ``psutil``), or not (``None``/``False``).

    A ``fit`` without a logger is a ``ValueError``, as in Lightning.
    """

    def __init__(self, cpu_stats: Optional[bool] = None) -> None:
        if cpu_stats and importlib.util.find_spec("psutil") is None:
            raise ModuleNotFoundError("`DeviceStatsMonitor(cpu_stats=True)` needs `psutil`: pip install psutil")
        self._cpu_stats = cpu_stats

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit" and not trainer.loggers:
            raise ConfigError("Cannot use `DeviceStatsMonitor` callback with `Trainer(logger=False)`.")

    def _log(self, trainer, key: str) -> None:
        if not trainer.loggers or not trainer.logger_connector.should_update_logs():
            return
        stats = {**device_stats(), **(cpu_stats() if self._cpu_stats else {})}
        prefix = f"{type(self).__qualname__}.{key}/"
        for logger in trainer.loggers:
            logger.log_metrics({prefix + k: v for k, v in stats.items()},
                               step=trainer.fit_loop.epoch_loop.batches_that_stepped)

    def on_train_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int) -> None:
        self._log(trainer, "on_train_batch_start")

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._log(trainer, "on_train_batch_end")

    def on_validation_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        self._log(trainer, "on_validation_batch_start")

    def on_validation_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        self._log(trainer, "on_validation_batch_end")

    def on_test_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._log(trainer, "on_test_batch_start")

    def on_test_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        self._log(trainer, "on_test_batch_end")
