"""Mirror of lightning.pytorch.strategies.single_device: one process on one device (MLX's default one).

Every collective of :class:`~cnn.mx.lightning.strategies.strategy.Strategy` is the identity here, as in
Lightning's ``SingleDeviceStrategy``: ``reduce`` and ``all_gather`` return their input, ``barrier`` returns at
once, ``broadcast`` returns the object.
"""

from __future__ import annotations

from cnn.mx.lightning.strategies.strategy import Strategy


class SingleDeviceStrategy(Strategy):
    """Lightning's ``SingleDeviceStrategy``: what ``Trainer(strategy="auto")`` runs when ``mlx.launch`` started no
    other process."""

    strategy_name = "single_device"

    @property
    def is_global_zero(self) -> bool:
        return True
