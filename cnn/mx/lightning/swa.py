"""Old path of the mirror of lightning.pytorch.callbacks.stochastic_weight_avg.

The classes' home moved when the mirror took Lightning's source layout; this path stays so that configs and
saved ``config.yaml`` files that name it still run.
"""

from cnn.mx.lightning.callbacks.stochastic_weight_avg import StochasticWeightAveraging

__all__ = ["StochasticWeightAveraging"]
