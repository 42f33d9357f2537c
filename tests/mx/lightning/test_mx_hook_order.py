"""The MLX Trainer calls callback and module hooks in exactly the order of the installed Lightning.

The reference order is recorded at test time from a real ``lightning.pytorch.Trainer`` running a tiny torch module
(2 epochs x 3 batches, validation every epoch, sanity check, default checkpointing, then test and predict, then a
resume from the ``last`` checkpoint); the MLX trainer runs a tiny MLX module through the same scenario with the same
recording callback/module mixin. Compared: (who, hook, batch_idx or stage) for every call.
"""

from __future__ import annotations

import warnings

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning.callbacks import Callback as MxCallback
from cnn.mx.lightning.callbacks import ModelCheckpoint as MxModelCheckpoint
from cnn.mx.lightning.trainer import Trainer as MxTrainer

import mlx.core as mx
import pytest

from tests.boring import MlxBoringModel, TorchBoringModel, boring_batches

CALLBACK_HOOKS = [
    "setup", "teardown", "on_fit_start", "on_fit_end", "on_sanity_check_start", "on_sanity_check_end",
    "on_train_batch_start", "on_train_batch_end", "on_train_epoch_start", "on_train_epoch_end",
    "on_validation_epoch_start", "on_validation_epoch_end", "on_test_epoch_start", "on_test_epoch_end",
    "on_predict_epoch_start", "on_predict_epoch_end", "on_validation_batch_start", "on_validation_batch_end",
    "on_test_batch_start", "on_test_batch_end", "on_predict_batch_start", "on_predict_batch_end", "on_train_start",
    "on_train_end", "on_validation_start", "on_validation_end", "on_test_start", "on_test_end", "on_predict_start",
    "on_predict_end", "on_exception", "state_dict", "load_state_dict", "on_save_checkpoint", "on_load_checkpoint",
    "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad",
]
MODULE_HOOKS = [
    "prepare_data", "setup", "teardown", "configure_optimizers", "on_fit_start", "on_fit_end", "on_train_start",
    "on_train_end", "on_validation_start", "on_validation_end", "on_test_start", "on_test_end", "on_predict_start",
    "on_predict_end", "on_train_batch_start", "on_train_batch_end", "on_validation_batch_start",
    "on_validation_batch_end", "on_test_batch_start", "on_test_batch_end", "on_predict_batch_start",
    "on_predict_batch_end", "on_validation_model_zero_grad", "on_validation_model_eval", "on_validation_model_train",
    "on_test_model_eval", "on_test_model_train", "on_predict_model_eval", "on_train_epoch_start",
    "on_train_epoch_end", "on_validation_epoch_start", "on_validation_epoch_end", "on_test_epoch_start",
    "on_test_epoch_end", "on_predict_epoch_start", "on_predict_epoch_end", "on_before_zero_grad",
    "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_save_checkpoint",
    "on_load_checkpoint", "on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer",
    "configure_model",
]  # configure_optimizers is recorded by the toy modules themselves (they override it)
# Module hooks around the optimizer step: recorded in the eager runs only, since overriding one keeps the MLX
# training step out of mx.compile (Trainer(compile=True) then runs it eagerly).
STEP_HOOKS = ["optimizer_step", "optimizer_zero_grad", "configure_gradient_clipping"]
# Run inside the compiled MLX step, hence not called when compile=True (documented in Trainer).
COMPILED_AWAY = {"on_before_zero_grad", "on_before_backward", "on_after_backward", "on_before_optimizer_step",
                 *STEP_HOOKS}


def _describe(name, args, kwargs):
    """The stage-relevant argument of a hook: stage for setup/teardown, batch_idx for batch hooks."""
    if name in ("setup", "teardown"):
        stage = kwargs.get("stage", args[0] if args else None)
        return getattr(stage, "value", stage)
    if name.endswith("batch_start"):
        return args[1]
    if name.endswith("batch_end"):
        return args[2]
    return None


def _callback_class(base):
    def make(name):
        def hook(self, *args, **kwargs):
            self.calls.append(("callback", name, _describe(name, args[2:], kwargs)))
            if name == "state_dict":
                return {"recorded": True}  # non-empty: the state is checkpointed and load_state_dict runs
        return hook

    cls = type("Recorder", (base,), {n: make(n) for n in CALLBACK_HOOKS})
    cls.__init__ = lambda self, calls: setattr(self, "calls", calls)
    return cls


def _module_mixin(hooks):
    def make(name):
        def hook(self, *args, **kwargs):
            self.calls.append(("module", name, _describe(name, args, kwargs)))
            return getattr(super(Mixin, self), name)(*args, **kwargs)
        return hook

    Mixin = type("Mixin", (), {n: make(n) for n in hooks})
    return Mixin


MODULE_MIXIN = _module_mixin(MODULE_HOOKS + STEP_HOOKS)
COMPILED_MODULE_MIXIN = _module_mixin(MODULE_HOOKS)


def _lightning_calls(tmp_path, **flags):
    import lightning.pytorch as pl
    import torch

    class TorchToy(MODULE_MIXIN, TorchBoringModel):
        def __init__(self, calls):
            super().__init__()
            object.__setattr__(self, "calls", calls)  # not a parameter container

        def configure_optimizers(self):
            self.calls.append(("module", "configure_optimizers", None))
            return super().configure_optimizers()

    def data(n_batches, seed):
        return boring_batches(n_batches, seed, convert=torch.from_numpy)

    torch.manual_seed(0)
    calls = []
    recorder = _callback_class(pl.Callback)(calls)
    common = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                  default_root_dir=str(tmp_path), **flags)
    model = TorchToy(calls)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)
    trainer = pl.Trainer(max_epochs=2, callbacks=[recorder, ckpt], **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, data(3, 0), data(2, 1))
        trainer.test(model, data(2, 2), verbose=False)
        trainer.predict(model, data(2, 3))
        first = list(calls)
        calls.clear()
        resumed = pl.Trainer(max_epochs=3, callbacks=[recorder, pl.callbacks.ModelCheckpoint(
            dirpath=str(tmp_path / "ckpt"), save_last=True)], **common)
        resumed.fit(TorchToy(calls), data(3, 0), data(2, 1), ckpt_path="last")
    return first, list(calls)


def _mlx_calls(tmp_path, compile, **flags):
    class MxToy(COMPILED_MODULE_MIXIN if compile else MODULE_MIXIN, MlxBoringModel):
        def __init__(self, calls):
            super().__init__()
            object.__setattr__(self, "calls", calls)  # not a parameter container

        def configure_optimizers(self):
            self.calls.append(("module", "configure_optimizers", None))
            return super().configure_optimizers()

    mx.random.seed(0)
    calls = []
    recorder = _callback_class(MxCallback)(calls)
    common = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                  default_root_dir=str(tmp_path), compile=compile, **flags)
    model = MxToy(calls)
    ckpt = MxModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)
    trainer = MxTrainer(max_epochs=2, callbacks=[recorder, ckpt], **common)
    trainer.fit(model, boring_batches(3, 0), boring_batches(2, 1))
    trainer.test(model, boring_batches(2, 2), verbose=False)
    trainer.predict(model, boring_batches(2, 3))
    first = list(calls)
    calls.clear()
    resumed = MxTrainer(max_epochs=3, callbacks=[recorder, MxModelCheckpoint(dirpath=str(tmp_path / "ckpt"),
                                                                             save_last=True)], **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed.fit(MxToy(calls), boring_batches(3, 0), boring_batches(2, 1), ckpt_path="last")
    return first, list(calls)


@pytest.fixture(scope="module")
def lightning_reference(tmp_path_factory):
    return _lightning_calls(tmp_path_factory.mktemp("pl"))


def _first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"first difference at call {i}: lightning {x} vs mlx {y}; context {a[max(0, i - 3):i + 3]}"
    return f"lengths differ: lightning {len(a)} vs mlx {len(b)}; tail {a[len(b):][:5] or b[len(a):][:5]}"


def test_eager_hook_order_equals_lightning(lightning_reference, tmp_path):
    """compile=False: every hook, including the backward/optimizer ones, in Lightning's order and arguments."""
    reference = lightning_reference
    ours = _mlx_calls(tmp_path, compile=False)
    assert reference and len(ours) == len(reference), "one recorded run per Lightning run"
    for ref, got in zip(reference, ours):
        assert got == ref, _first_difference(ref, got)


def test_compiled_hook_order_equals_lightning_minus_in_graph_hooks(lightning_reference, tmp_path):
    """compile=True: identical except the four hooks that would run inside the compiled graph."""
    ours = _mlx_calls(tmp_path, compile=True)
    assert lightning_reference and len(ours) == len(lightning_reference), "one recorded run per Lightning run"
    for ref, got in zip(lightning_reference, ours):
        ref = [c for c in ref if c[1] not in COMPILED_AWAY]
        assert got == ref, _first_difference(ref, got)
    assert not any(c[1] in COMPILED_AWAY for run in ours for c in run)


def test_eager_hook_order_with_gradient_accumulation_equals_lightning(tmp_path):
    """accumulate_grad_batches=2 over 3 batches: zero_grad on an accumulation's first batch, the optimizer step
    on its last and on the epoch's last, backward hooks every batch; validation's zero_grad only after a step."""
    reference = _lightning_calls(tmp_path / "pl", accumulate_grad_batches=2)
    ours = _mlx_calls(tmp_path / "mx", compile=False, accumulate_grad_batches=2)
    assert reference and len(ours) == len(reference)
    for ref, got in zip(reference, ours):
        assert got == ref, _first_difference(ref, got)


def test_reference_covers_the_scenario(lightning_reference):
    """Guard against a vacuous comparison: the Lightning run did train, validate, test, predict and resume."""
    first, resumed = lightning_reference
    names = {c[1] for c in first}
    assert {"on_sanity_check_start", "on_validation_batch_end", "on_train_epoch_end", "on_save_checkpoint",
            "on_test_batch_end", "on_predict_batch_end", "on_before_backward", "configure_optimizers",
            "optimizer_step", "configure_gradient_clipping", "on_after_batch_transfer", "configure_model"} <= names
    assert [c[1] for c in resumed].count("on_load_checkpoint") == 2  # callback and module
    assert ("callback", "load_state_dict", None) in resumed
