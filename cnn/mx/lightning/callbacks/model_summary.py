"""Mirror of lightning.pytorch.callbacks.model_summary: ``ModelSummary``."""

from __future__ import annotations

from cnn.mx.lightning.callbacks.callback import Callback
from cnn.mx.lightning.utilities.model_summary import count_parameters

import mlx.nn as nn


class ModelSummary(Callback):
    """Print a table of the top-level sub-modules and parameter counts at ``on_fit_start`` (Lightning's
    summary). Frozen arrays count as non-trainable parameters; buffers (``register_buffer``, a batch norm's running
    statistics) are not parameters, as in torch
    (:func:`~cnn.mx.lightning.utilities.model_summary.buffer_keys`)."""

    def on_fit_start(self, trainer, pl_module) -> None:
        rows = []
        for name, child in pl_module.children().items():
            children = child if isinstance(child, (list, tuple)) else [child]
            n = sum(count_parameters(c) for c in children if isinstance(c, nn.Module))
            rows.append((name, type(child).__name__, n))
        trainable, total = count_parameters(pl_module, trainable_only=True), count_parameters(pl_module)
        lines = [f"  | {'Name':<20} | {'Type':<20} | {'Params':>10}", "-" * 60]
        lines += [f"{i} | {n:<20} | {t:<20} | {p:>10,}" for i, (n, t, p) in enumerate(rows)]
        lines += ["-" * 60, f"{trainable:,} Trainable params", f"{total - trainable:,} Non-trainable params",
                  f"{total:,} Total params"]
        print("\n".join(lines))
