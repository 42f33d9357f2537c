"""Test-only callbacks, named in a YAML's ``trainer.callbacks``: ``{Torch,Mlx}FailAtStep(step)`` raise a
``RuntimeError`` (a failing callback, the kind of error no user setting causes) once ``trainer.global_step``
reaches ``step``. Each class is built on first use, so a torch run never imports MLX, nor an MLX run Lightning."""

from __future__ import annotations


class _FailAtStep:
    def __init__(self, step: int):
        """
        Args:
            step: raise once ``trainer.global_step`` reaches this.
        """
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError(f"injected failure at step {trainer.global_step}")


_built: dict[str, type] = {}


def __getattr__(name: str) -> type:
    if name not in ("TorchFailAtStep", "MlxFailAtStep"):
        raise AttributeError(name)
    if name not in _built:
        if name.startswith("Torch"):
            from lightning.pytorch import Callback
        else:
            from cnn.mx.lightning.callbacks import Callback
        _built[name] = type(name, (_FailAtStep, Callback), {"__module__": __name__})
    return _built[name]
