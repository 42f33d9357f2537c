"""Old path of the mirror of lightning.pytorch.callbacks.device_stats_monitor.

The classes' home moved when the mirror took Lightning's source layout; this path stays so that configs and
saved ``config.yaml`` files that name it still run.
"""

from cnn.mx.lightning.callbacks.device_stats_monitor import DeviceStatsMonitor

__all__ = ["DeviceStatsMonitor"]
