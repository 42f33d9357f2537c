"""Mirror of lightning.pytorch.trainer.connectors.checkpoint_connector: the checkpoint dict built from a trainer
and a trainer restored from it (same hook order as Lightning).

The dict has Lightning's keys (``epoch``, ``global_step``, ``pytorch-lightning_version``, ``state_dict``, ``loops``,
``callbacks``, ``optimizer_states``, ``lr_schedulers``, ``hparams_name``/``hyper_parameters``,
``datamodule_hparams_name``/``datamodule_hyper_parameters``, ``<DataModule qualname>``) with MLX arrays where
Lightning has tensors (``state_dict`` and each optimizer's state flat ``{path: array}`` dicts), and the MLX key
``rng_state``; :mod:`cnn.mx.lightning.plugins.io` writes it.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Optional

from cnn.mx.lightning.core.saving import LIGHTNING_API_VERSION, storable_hparams
from cnn.mx.lightning.trainer.call import call_callback_hooks, call_lightning_module_hook
from cnn.mx.lightning.utilities.seed import set_rng

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

from cnn.errors import CheckpointError
from cnn.runs import OPTIMIZERS_KEY, check_same_optimizers, optimizer_names


def select_ckpt_path(trainer: Any, fn: str, model: Any, ckpt_path: Optional[str]) -> Optional[str]:
    """Lightning's ``_select_ckpt_path``: ``validate``/``test``/``predict`` called with neither a model nor a
    ``ckpt_path`` after a ``fit`` that saved a best checkpoint use that one (with Lightning's warning)."""
    callback = trainer.checkpoint_callback
    if model is None and ckpt_path is None and callback is not None and callback.best_model_path:
        warnings.warn(f"`.{fn}(ckpt_path=None)` was called without a model. The best model of the previous "
                      "`fit` call will be used.", stacklevel=3)
        return "best"
    return ckpt_path


def resolve_ckpt_path(trainer: Any, fn: str, ckpt_path: Optional[str]) -> Optional[str]:
    """Lightning's ``_parse_ckpt_path``: ``"best"`` -> first checkpoint callback's best model, ``"last"`` -> newest
    ``last*.safetensors`` of the checkpoint callbacks (a warning and no checkpoint when there is none)."""
    if ckpt_path is None:
        return None
    if ckpt_path == "best":
        cb = trainer.checkpoint_callback
        if cb is None or not cb.best_model_path:
            raise ValueError(f'`.{fn}(ckpt_path="best")` is set but `ModelCheckpoint` has no best model')
        return cb.best_model_path
    if ckpt_path == "last":
        candidates = set().union(*(cb.last_checkpoints(trainer) for cb in trainer.checkpoint_callbacks))
        if not candidates:
            warnings.warn(f'.{fn}(ckpt_path="last") is set, but there is no last checkpoint available. '
                          "No checkpoint will be loaded.", stacklevel=2)
            return None
        return max(candidates, key=os.path.getmtime)
    return os.fspath(ckpt_path)


def _storable(flat: list[tuple[str, Any]]) -> dict[str, Any]:
    """``flat`` as a dict, float64 arrays as float32: safetensors files from MLX hold no float64 (a
    ``precision="64-true"`` run resumes from float32 values, cast back to float64 by the trainer)."""
    return {k: v.astype(mx.float32) if isinstance(v, mx.array) and v.dtype == mx.float64 else v for k, v in flat}


def dump_checkpoint(trainer: Any, weights_only: bool = False) -> dict[str, Any]:
    """Lightning's ``dump_checkpoint``: every callback's ``state_dict``, then ``on_save_checkpoint`` (callbacks,
    module). ``loops.fit_loop`` holds the fit loop's ``state_dict()``: the resume point of this instant."""
    model, dm = trainer.lightning_module, trainer.datamodule
    ckpt: dict[str, Any] = {"epoch": trainer.current_epoch, "global_step": trainer.global_step,
                            "pytorch-lightning_version": LIGHTNING_API_VERSION,
                            "state_dict": _storable(tree_flatten(model.parameters())),
                            "loops": {"fit_loop": trainer.fit_loop.state_dict()}}
    if not weights_only:
        states = {cb.state_key: cb.state_dict() for cb in trainer.callbacks}
        ckpt["callbacks"] = {k: v for k, v in states.items() if v}
        ckpt["optimizer_states"] = [_storable(tree_flatten(opt.state)) for opt in trainer.optimizers]
        ckpt[OPTIMIZERS_KEY] = optimizer_names(trainer.optimizers)  # a resume with others is refused
        ckpt["lr_schedulers"] = [{"last_epoch": c.last_epoch} for c in trainer.lr_scheduler_configs]
        ckpt["rng_state"] = mx.random.state[0]
        scaler = trainer.precision_plugin.scaler
        if scaler is not None:  # Lightning's key: its precision plugin's class name
            ckpt["MixedPrecision"] = scaler.state_dict()
    for obj in (model, dm):  # Lightning's: the hyper-parameters and the name of the argument they came in
        if obj is not None and getattr(obj, "hparams", None):
            if obj.hparams_name is not None:
                ckpt[obj.CHECKPOINT_HYPER_PARAMS_NAME] = obj.hparams_name
            ckpt[obj.CHECKPOINT_HYPER_PARAMS_KEY] = storable_hparams(obj.hparams)
    if dm is not None and hasattr(dm, "state_dict"):
        dm_state = dm.state_dict()
        if dm_state:
            ckpt[type(dm).__qualname__] = dm_state
    if not weights_only:
        call_callback_hooks(trainer, "on_save_checkpoint", ckpt)
    call_lightning_module_hook(trainer, "on_save_checkpoint", ckpt)
    return ckpt


def restore_modules_and_callbacks(trainer: Any, fn: str, ckpt_path: Optional[str]) -> Optional[dict[str, Any]]:
    """Lightning's ``_restore_modules_and_callbacks``: with a checkpoint (``ckpt_path`` resolved into
    ``trainer.ckpt_path``), module ``on_load_checkpoint`` + weights, datamodule ``load_state_dict``, callbacks
    ``on_load_checkpoint`` + ``load_state_dict`` (Lightning's order, before ``configure_optimizers``). Returns the
    checkpoint read, ``None`` without one."""
    trainer.ckpt_path = resolve_ckpt_path(trainer, fn, ckpt_path)
    if not trainer.ckpt_path:
        return None
    ckpt = trainer.checkpoint_io.load_checkpoint(trainer.ckpt_path)
    model, dm = trainer.lightning_module, trainer.datamodule
    call_lightning_module_hook(trainer, "on_load_checkpoint", ckpt)
    try:
        model.load_weights(list(ckpt["state_dict"].items()), strict=True)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {trainer.ckpt_path} does not match the model: "
                              f"{str(e).strip().splitlines()[0]}") from None
    mx.eval(model.parameters())
    if dm is not None and type(dm).__qualname__ in ckpt and hasattr(dm, "load_state_dict"):
        dm.load_state_dict(ckpt[type(dm).__qualname__])
    states = ckpt.get("callbacks")
    if states is not None:
        call_callback_hooks(trainer, "on_load_checkpoint", ckpt)
        for cb in trainer.callbacks:
            if cb.state_key in states:
                cb.load_state_dict(dict(states[cb.state_key]))
    return ckpt


def restore_training_state(trainer: Any, ckpt: Optional[dict[str, Any]]) -> None:
    """Loop position, optimizer state, scheduler counters and RNG key (fit only, after ``on_fit_start``; nothing
    without a checkpoint, as Lightning's); refused first when the checkpoint holds another optimizer's state
    (``opt.init`` would drop it silently), before the loop position is in, so that no ``last`` is written on the
    way out."""
    if ckpt is None:
        return
    check_same_optimizers(ckpt.get(OPTIMIZERS_KEY), trainer.optimizers, trainer.ckpt_path)
    trainer.fit_loop.load_state_dict(ckpt["loops"]["fit_loop"])
    if not ckpt.get("optimizer_states"):
        raise CheckpointError(f"{trainer.ckpt_path} holds only model weights (save_weights_only); cannot resume")
    opts, model = trainer.optimizers, trainer.lightning_module
    for opt, flat in zip(opts, ckpt["optimizer_states"]):
        opt.state = tree_unflatten(list(flat.items()))
        if model.automatic_optimization:  # manual: each optimizer completes its state at its first update
            opt.init(model.trainable_parameters())
    for config, state in zip(trainer.lr_scheduler_configs, ckpt.get("lr_schedulers", [])):
        config.last_epoch = state["last_epoch"]
    if ckpt.get("rng_state") is not None:
        set_rng(ckpt["rng_state"])
    scaler = trainer.precision_plugin.scaler
    if scaler is not None and ckpt.get("MixedPrecision"):
        scaler.load_state_dict(ckpt["MixedPrecision"])


class CheckpointConnector:
    """Lightning's ``trainer._checkpoint_connector``: the functions above bound to one trainer, for the code (and
    Lightning's tests) that reaches them through it."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def dump_checkpoint(self, weights_only: Optional[bool] = None) -> dict[str, Any]:
        return dump_checkpoint(self.trainer, bool(weights_only))

    def _restore_modules_and_callbacks(self, checkpoint_path: Optional[str] = None) -> Optional[dict[str, Any]]:
        return restore_modules_and_callbacks(self.trainer, self.trainer.state.fn, checkpoint_path)
