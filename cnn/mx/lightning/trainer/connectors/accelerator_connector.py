"""Mirror of lightning.pytorch.trainer.connectors.accelerator_connector: from the ``Trainer`` flags, the device
(``accelerator``), the precision plugin, the checkpoint IO (``plugins``) and the strategy that runs on them
(``trainer.strategy``, :mod:`cnn.mx.lightning.strategies`).
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from cnn.mx.lightning.plugins.io.safetensors_io import SafetensorsCheckpointIO
from cnn.mx.lightning.plugins.precision.precision import Precision
from cnn.mx.lightning.strategies import DDPStrategy, SingleDeviceStrategy, Strategy
from cnn.mx.lightning.utilities import distributed as dist
from cnn.mx.lightning.utilities.rank_zero import rank_zero_only


def checkpoint_io_from(plugins: Any) -> Any:
    """The checkpoint IO among Lightning-style ``plugins``; the default file format when none."""
    given = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    if any(not (hasattr(p, "save_checkpoint") and hasattr(p, "load_checkpoint")) for p in given) or len(given) > 1:
        raise ValueError(f"Trainer(plugins={plugins!r}) is not supported by the MLX trainer "
                         "(supported: None or one checkpoint IO)")
    return given[0] if given else SafetensorsCheckpointIO()


class AcceleratorConnector:
    """Lightning's ``_AcceleratorConnector``: chooses, from the flags it owns, the precision plugin
    (``precision``), the checkpoint IO (``plugins``) and the strategy (``strategy``: ``"auto"`` is
    :class:`SingleDeviceStrategy` when ``mlx.launch`` started no other process, else :class:`DDPStrategy`;
    ``"ddp"`` is :class:`DDPStrategy`), made on ``accelerator``. ``benchmark=True`` prints, on rank zero, that MLX
    has no kernel autotuner."""

    def __init__(self, accelerator: str = "auto", strategy: str = "auto", precision: Any = "32-true",
                 plugins: Any = None, benchmark: Optional[bool] = None) -> None:
        chosen = DDPStrategy if strategy == "ddp" or dist.world().size() > 1 else SingleDeviceStrategy
        self.strategy: Strategy = chosen(accelerator, checkpoint_io_from(plugins), Precision(precision))
        self.global_rank: int = getattr(self.strategy, "global_rank", 0)
        rank_zero_only.rank = self.global_rank  # as Lightning's strategy sets it: loggers read it
        if benchmark and self.global_rank == 0:
            print("note: Trainer(benchmark=True) has no effect with MLX, which has no kernel autotuner",
                  file=sys.stderr)

    def lost_peer(self, error: BaseException) -> bool:
        """``trainer.strategy.lost_peer``, for the callers that asked the connector before the strategy existed
        (``cnn/mx/cli.py``)."""
        return self.strategy.lost_peer(error)
