"""Ported from Lightning's tests/tests_pytorch/models/test_hooks.py (the hook-call-order tests of the whole fit
are covered by tests/mx/lightning/test_mx_hook_order.py, which runs one fit through both frameworks and compares
every event)."""

from functools import partial, update_wrapper
from inspect import getmembers, isfunction
from unittest.mock import ANY

import pytest


@pytest.mark.parametrize("max_steps", [1, 2, 3])
def test_on_before_zero_grad_called(pl, tmp_path, max_steps):
    """test_hooks.py::test_on_before_zero_grad_called: once per optimizer step in fit, never in test."""

    class CurrentTestModel(pl.BoringModel):
        on_before_zero_grad_called = 0

        def on_before_zero_grad(self, optimizer):
            self.on_before_zero_grad_called += 1

    model = CurrentTestModel()

    trainer = pl.Trainer(devices=1, default_root_dir=tmp_path, max_steps=max_steps, max_epochs=2)
    assert model.on_before_zero_grad_called == 0
    trainer.fit(model)
    assert max_steps == model.on_before_zero_grad_called

    model.on_before_zero_grad_called = 0
    trainer.test(model)
    assert model.on_before_zero_grad_called == 0


def test_on_train_epoch_end_metrics_collection(pl, tmp_path):
    """test_hooks.py::test_on_train_epoch_end_metrics_collection: progress bar metrics also get collected at the end
    of an epoch."""
    num_epochs = 3

    class CurrentModel(pl.BoringModel):
        def training_step(self, *args, **kwargs):
            output = super().training_step(*args, **kwargs)
            self.log_dict({"step_metric": pl.tensor(-1), "shared_metric": 100}, logger=False, prog_bar=True)
            return output

        def on_train_epoch_end(self):
            epoch = self.current_epoch
            # both scalar tensors and Python numbers are accepted
            self.log_dict(
                {f"epoch_metric_{epoch}": pl.tensor(epoch), "shared_metric": 111}, logger=False, prog_bar=True
            )

    model = CurrentModel()
    trainer = pl.Trainer(max_epochs=num_epochs, default_root_dir=tmp_path, overfit_batches=2)
    trainer.fit(model)
    assert trainer.state.finished, f"Training failed with {trainer.state}"
    metrics = trainer.progress_bar_callback.get_metrics(trainer, model)

    # metrics added in training step should be unchanged by epoch end method
    assert metrics["step_metric"] == -1
    # a metric shared in both methods gets overwritten by epoch_end
    assert metrics["shared_metric"] == 111
    # metrics are kept after each epoch
    for i in range(num_epochs):
        assert metrics[f"epoch_metric_{i}"] == i


def test_hooks_with_different_argument_names(pl, tmp_path):
    """test_hooks.py::test_hooks_with_different_argument_names: argument names can be anything in the hooks."""

    class CustomBoringModel(pl.BoringModel):
        def assert_args(self, x, batch_nb):
            assert isinstance(x, pl.Tensor)
            assert tuple(x.shape) == (1, 32)
            assert isinstance(batch_nb, int)

        def training_step(self, x1, batch_nb1):
            self.assert_args(x1, batch_nb1)
            return super().training_step(x1, batch_nb1)

        def validation_step(self, x2, batch_nb2):
            self.assert_args(x2, batch_nb2)
            return super().validation_step(x2, batch_nb2)

        # we don't support a different name for `dataloader_idx`
        def test_step(self, x3, batch_nb3, dataloader_idx):
            self.assert_args(x3, batch_nb3)
            assert isinstance(dataloader_idx, int)
            return super().test_step(x3, batch_nb3)

        # we don't support a different name for `dataloader_idx`
        def predict_step(self, x4, batch_nb4, dataloader_idx):
            self.assert_args(x4, batch_nb4)
            assert isinstance(dataloader_idx, int)
            return super().predict_step(x4, batch_nb4, dataloader_idx)

        def test_dataloader(self):
            return [pl.DataLoader(pl.RandomDataset(32, 64)), pl.DataLoader(pl.RandomDataset(32, 64))]

        def predict_dataloader(self):
            return [pl.DataLoader(pl.RandomDataset(32, 64)), pl.DataLoader(pl.RandomDataset(32, 64))]

    model = CustomBoringModel()

    trainer = pl.Trainer(devices=1, default_root_dir=tmp_path, fast_dev_run=5)

    trainer.fit(model)
    trainer.test(model)

    preds = trainer.predict(model)
    assert len(preds) == 2
    assert all(len(x) == 5 for x in preds)


def get_members(cls):
    return {h for h, _ in getmembers(cls, predicate=isfunction) if not h.startswith("_")}


def _hooked_callback(pl, called):
    class HookedCallback(pl.Callback):
        def __init__(self, called):
            def call(hook, fn, *args, **kwargs):
                out = fn(*args, **kwargs)
                d = {"name": f"Callback.{hook}"}
                if args:
                    d["args"] = args
                if kwargs:
                    d["kwargs"] = kwargs
                called.append(d)
                return out

            for h in get_members(pl.Callback):
                attr = getattr(self, h)
                partial_h = partial(call, h, attr)
                update_wrapper(partial_h, attr)
                setattr(self, h, partial_h)

        def state_dict(*args, **kwargs):
            return {"foo": True}

    return HookedCallback(called)


def _hooked_model(pl, called):
    """test_hooks.py::HookedModel: every LightningModule hook (and ``forward``, ``zero_grad``, ``train`` of the
    framework's module) records its call."""

    class HookedModel(pl.BoringModel):
        def __init__(self, called):
            super().__init__()
            pl_module_hooks = get_members(pl.LightningModule)
            # remove non-hooks
            pl_module_hooks.difference_update({"optimizers", "log", "log_dict"})
            # remove most `nn.Module` hooks
            module_hooks = get_members(pl.nn.Module)
            module_hooks.difference_update({"forward", "zero_grad", "train"})
            pl_module_hooks.difference_update(module_hooks)

            def call(hook, fn, *args, **kwargs):
                out = fn(*args, **kwargs)
                d = {"name": hook}
                if args:
                    d["args"] = args
                elif hook == "train":
                    d["args"] = (True,)
                if kwargs:
                    d["kwargs"] = kwargs
                called.append(d)
                return out

            for h in pl_module_hooks:
                attr = getattr(self, h)
                partial_h = partial(call, h, attr)
                update_wrapper(partial_h, attr)
                setattr(self, h, partial_h)

        @staticmethod
        def _eval_epoch(fn, trainer, model, batches, key, device):
            return [
                {"name": f"Callback.on_{fn}_epoch_start", "args": (trainer, model)},
                {"name": f"on_{fn}_epoch_start"},
                *HookedModel._eval_batch(fn, trainer, model, batches, key, device=device),
                {"name": f"Callback.on_{fn}_epoch_end", "args": (trainer, model)},
                {"name": f"on_{fn}_epoch_end"},
            ]

        @staticmethod
        def _eval_batch(fn, trainer, model, batches, key, device):
            out = []
            outputs = {key: ANY}
            for i in range(batches):
                out.extend([
                    {"name": "on_before_batch_transfer", "args": (ANY, 0)},
                    {"name": "transfer_batch_to_device", "args": (ANY, device, 0)},
                    {"name": "on_after_batch_transfer", "args": (ANY, 0)},
                    {"name": f"Callback.on_{fn}_batch_start", "args": (trainer, model, ANY, i)},
                    {"name": f"on_{fn}_batch_start", "args": (ANY, i)},
                    {"name": "forward", "args": (ANY,)},
                    {"name": f"{fn}_step", "args": (ANY, i)},
                    {"name": f"Callback.on_{fn}_batch_end", "args": (trainer, model, outputs, ANY, i)},
                    {"name": f"on_{fn}_batch_end", "args": (outputs, ANY, i)},
                ])
            return out

        @staticmethod
        def _predict_batch(trainer, model, batches, device):
            out = []
            for i in range(batches):
                out.extend([
                    {"name": "on_before_batch_transfer", "args": (ANY, 0)},
                    {"name": "transfer_batch_to_device", "args": (ANY, device, 0)},
                    {"name": "on_after_batch_transfer", "args": (ANY, 0)},
                    {"name": "Callback.on_predict_batch_start", "args": (trainer, model, ANY, i)},
                    {"name": "on_predict_batch_start", "args": (ANY, i)},
                    {"name": "forward", "args": (ANY,)},
                    {"name": "predict_step", "args": (ANY, i)},
                    {"name": "Callback.on_predict_batch_end", "args": (trainer, model, ANY, ANY, i)},
                    {"name": "on_predict_batch_end", "args": (ANY, ANY, i)},
                ])
            return out

        # override so that it gets called
        def configure_model(self): ...

        # override so that it gets called
        def on_validation_model_train(self): ...

        # override so that it gets called
        def on_test_model_train(self): ...

        # override so that it gets called
        def on_predict_model_train(self): ...

        # override so that it gets called
        def prepare_data(self): ...

    return HookedModel(called)


_ARRAY_EQ = ("an mx.array compared with unittest.mock.ANY does not defer to ANY as a torch tensor does (the batch "
             "after the transfer hooks is an mx.array): `(batch, 0) == (ANY, 0)` is False")


@pytest.mark.parametrize("batches", [0, pytest.param(2, marks=pytest.mark.mirror_differs(_ARRAY_EQ))])
@pytest.mark.parametrize(
    ("verb", "noun", "dataloader", "key"), [("validate", "validation", "val", "x"), ("test", "test", "test", "y")]
)
@pytest.mark.parametrize("override_on_x_model_train", [True, False])
def test_trainer_model_hook_system_eval(pl, tmp_path, override_on_x_model_train, batches, verb, noun, dataloader,
                                        key):
    """test_hooks.py::test_trainer_model_hook_system_eval: every hook of validate/test, in Lightning's order."""
    called = []
    model = _hooked_model(pl, called)
    if not override_on_x_model_train:
        setattr(model, f"on_{noun}_model_train", None)
    assert pl.is_overridden(f"on_{noun}_model_train", model) == override_on_x_model_train
    callback = _hooked_callback(pl, called)
    trainer = pl.Trainer(
        devices=1,
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_val_batches=batches,
        limit_test_batches=batches,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    fn = getattr(trainer, verb)
    fn(model, verbose=False)
    hooks = [
        {"name": f"{dataloader}_dataloader"},
        {"name": "train", "args": (False,)},
        {"name": f"on_{noun}_model_eval"},
        {"name": f"Callback.on_{noun}_start", "args": (trainer, model)},
        {"name": f"on_{noun}_start"},
        *model._eval_epoch(noun, trainer, model, batches, key, trainer.strategy.root_device),
        {"name": f"Callback.on_{noun}_end", "args": (trainer, model)},
        {"name": f"on_{noun}_end"},
        *([{"name": f"on_{noun}_model_train"}] if override_on_x_model_train else []),
    ]
    expected = [
        {"name": "configure_callbacks"},
        {"name": "prepare_data"},
        {"name": "Callback.setup", "args": (trainer, model), "kwargs": {"stage": verb}},
        {"name": "setup", "kwargs": {"stage": verb}},
        {"name": "configure_model"},
        {"name": "zero_grad"},
        *(hooks if batches else []),
        {"name": "Callback.teardown", "args": (trainer, model), "kwargs": {"stage": verb}},
        {"name": "teardown", "kwargs": {"stage": verb}},
    ]
    assert called == expected


@pytest.mark.mirror_differs(_ARRAY_EQ)
def test_trainer_model_hook_system_predict(pl, tmp_path):
    """test_hooks.py::test_trainer_model_hook_system_predict: every hook of predict, in Lightning's order."""
    called = []
    model = _hooked_model(pl, called)
    callback = _hooked_callback(pl, called)
    batches = 2
    trainer = pl.Trainer(
        devices=1,
        default_root_dir=tmp_path,
        limit_predict_batches=batches,
        enable_progress_bar=False,
        callbacks=[callback],
    )
    trainer.predict(model)
    expected = [
        {"name": "configure_callbacks"},
        {"name": "prepare_data"},
        {"name": "Callback.setup", "args": (trainer, model), "kwargs": {"stage": "predict"}},
        {"name": "setup", "kwargs": {"stage": "predict"}},
        {"name": "configure_model"},
        {"name": "zero_grad"},
        {"name": "predict_dataloader"},
        {"name": "train", "args": (False,)},
        {"name": "on_predict_model_eval"},
        {"name": "Callback.on_predict_start", "args": (trainer, model)},
        {"name": "on_predict_start"},
        {"name": "Callback.on_predict_epoch_start", "args": (trainer, model)},
        {"name": "on_predict_epoch_start"},
        *model._predict_batch(trainer, model, batches, trainer.strategy.root_device),
        {"name": "Callback.on_predict_epoch_end", "args": (trainer, model)},
        {"name": "on_predict_epoch_end"},
        {"name": "Callback.on_predict_end", "args": (trainer, model)},
        {"name": "on_predict_end"},
        # TODO: `on_predict_model_train`
        {"name": "Callback.teardown", "args": (trainer, model), "kwargs": {"stage": "predict"}},
        {"name": "teardown", "kwargs": {"stage": "predict"}},
    ]
    assert called == expected
