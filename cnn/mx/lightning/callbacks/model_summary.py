"""Mirror of lightning.pytorch.callbacks.model_summary: ``ModelSummary``."""

from __future__ import annotations

from cnn.mx.lightning.callbacks.callback import Callback

from mlx.utils import tree_flatten


class ModelSummary(Callback):
    """Print a table of the top-level sub-modules and parameter counts at ``on_fit_start`` (Lightning's
    summary). Frozen arrays count as non-trainable parameters; buffers (``register_buffer``) are not
    parameters, as in torch."""

    def on_fit_start(self, trainer, pl_module) -> None:
        rows = []
        for name, child in pl_module.children().items():
            children = child if isinstance(child, (list, tuple)) else [child]
            n = sum(v.size for c in children if hasattr(c, "parameters") for _, v in tree_flatten(c.parameters()))
            rows.append((name, type(child).__name__, n))
        buffers = getattr(pl_module, "buffer_names", frozenset())
        trainable = sum(v.size for k, v in tree_flatten(pl_module.trainable_parameters()) if k not in buffers)
        total = sum(v.size for k, v in tree_flatten(pl_module.parameters()) if k not in buffers)
        lines = [f"  | {'Name':<20} | {'Type':<20} | {'Params':>10}", "-" * 60]
        lines += [f"{i} | {n:<20} | {t:<20} | {p:>10,}" for i, (n, t, p) in enumerate(rows)]
        lines += ["-" * 60, f"{trainable:,} Trainable params", f"{total - trainable:,} Non-trainable params",
                  f"{total:,} Total params"]
        print("\n".join(lines))
