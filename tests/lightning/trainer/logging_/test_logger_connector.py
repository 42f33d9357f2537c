"""Ported from Lightning's tests/tests_pytorch/trainer/logging_/test_logger_connector.py."""

import inspect
from functools import partial

import pytest
import torch


def get_members(cls):
    """Lightning's tests_pytorch.helpers.utils.get_members: the public functions of ``cls``."""
    return {h for h, _ in inspect.getmembers(cls, predicate=inspect.isfunction) if not h.startswith("_")}


def hooked_callback(pl, not_supported):
    """Lightning's ``HookedCallback``: every Callback hook logs its own name, or checks Lightning's error where
    logging is not supported."""

    class HookedCallback(pl.Callback):
        def __init__(self):
            def call(hook, trainer=None, model=None, *_, **__):
                if trainer is None:
                    # `state_dict`, `load_state_dict` do not have the `Trainer` available
                    assert hook in ("state_dict", "load_state_dict")
                    return

                lightning_module = trainer.lightning_module or model

                if hook in not_supported:
                    with pytest.raises(pl.MisconfigurationException, match=not_supported[hook]):
                        lightning_module.log("anything", 1)
                else:
                    lightning_module.log(hook, 1)

            for h in get_members(pl.Callback):
                setattr(self, h, partial(call, h))

    return HookedCallback()


def hooked_model(pl, not_supported):
    """Lightning's ``HookedModel``: every LightningModule hook logs its own name after it ran, or checks Lightning's
    error where logging is not supported."""

    class HookedModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            pl_module_hooks = get_members(pl.LightningModule)
            pl_module_hooks.difference_update({"log", "log_dict"})
            pl_module_hooks.discard("configure_sharded_model")
            # remove `nn.Module` hooks (on the mirror also torch's, which its LightningModule reproduces: zero_grad,
            # state_dict...; on Lightning the two sets are the same)
            module_hooks = get_members(pl.nn.Module) | get_members(torch.nn.Module)
            pl_module_hooks.difference_update(module_hooks)

            def call(hook, fn, *args, **kwargs):
                out = fn(*args, **kwargs)

                if hook in not_supported:
                    with pytest.raises(pl.MisconfigurationException, match=not_supported[hook]):
                        self.log("anything", 1)
                else:
                    self.log(hook, 1)
                return out

            for h in pl_module_hooks:
                attr = getattr(self, h)
                setattr(self, h, partial(call, h, attr))

    return HookedModel()


def test_fx_validator_integration(pl, tmp_path):
    """test_logger_connector.py::test_fx_validator_integration: logging inside every LightningModule and Callback
    hook, with Lightning's error where it is not allowed."""
    not_supported = {
        None: "`self.trainer` reference is not registered",
        "setup": "You can't",
        "configure_model": "You can't",
        "configure_optimizers": "You can't",
        "on_fit_start": "You can't",
        "train_dataloader": "You can't",
        "val_dataloader": "You can't",
        "on_before_batch_transfer": "You can't",
        "transfer_batch_to_device": "You can't",
        "on_after_batch_transfer": "You can't",
        "on_validation_end": "You can't",
        "on_train_end": "You can't",
        "on_fit_end": "You can't",
        "teardown": "You can't",
        "on_sanity_check_start": "You can't",
        "on_sanity_check_end": "You can't",
        "prepare_data": "You can't",
        "configure_callbacks": "You can't",
        "on_validation_model_zero_grad": "You can't",
        "on_validation_model_eval": "You can't",
        "on_validation_model_train": "You can't",
        "lr_scheduler_step": "You can't",
        "on_save_checkpoint": "You can't",
        "on_load_checkpoint": "You can't",
        "on_exception": "You can't",
    }
    model = hooked_model(pl, not_supported)

    with pytest.warns(UserWarning, match=not_supported[None]):
        model.log("foo", 1)

    callback = hooked_callback(pl, not_supported)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=1,
        limit_test_batches=1,
        limit_predict_batches=1,
        callbacks=callback,
    )
    trainer.fit(model)

    not_supported.update({
        # `lightning_module` ref is now present from the `fit` call
        "test_dataloader": "You can't",
        "on_test_model_eval": "You can't",
        "on_test_model_train": "You can't",
        "on_test_end": "You can't",
    })
    trainer.test(model, verbose=False)

    not_supported.update(dict.fromkeys(not_supported, "result collection is not registered yet"))
    not_supported.update({
        "predict_dataloader": "result collection is not registered yet",
        "on_predict_model_eval": "result collection is not registered yet",
        "on_predict_start": "result collection is not registered yet",
        "on_predict_epoch_start": "result collection is not registered yet",
        "on_predict_batch_start": "result collection is not registered yet",
        "predict_step": "result collection is not registered yet",
        "on_predict_batch_end": "result collection is not registered yet",
        "on_predict_epoch_end": "result collection is not registered yet",
        "on_predict_end": "result collection is not registered yet",
    })
    trainer.predict(model)


@pytest.mark.parametrize("add_dataloader_idx", [False, True])
def test_auto_add_dataloader_idx(pl, tmp_path, add_dataloader_idx):
    """test_logger_connector.py::test_auto_add_dataloader_idx."""

    class TestModel(pl.BoringModel):
        def val_dataloader(self):
            dl = super().val_dataloader()
            return [dl, dl]

        def validation_step(self, *args, **kwargs):
            output = super().validation_step(*args[:-1], **kwargs)
            name = "val_loss" if add_dataloader_idx else f"val_loss_custom_naming_{args[-1]}"

            self.log(name, output["x"], add_dataloader_idx=add_dataloader_idx)
            return output

    model = TestModel()

    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=2)
    trainer.fit(model)
    logged = trainer.logged_metrics

    if add_dataloader_idx:
        assert "val_loss/dataloader_idx_0" in logged
        assert "val_loss/dataloader_idx_1" in logged
    else:
        assert "val_loss_custom_naming_0" in logged
        assert "val_loss_custom_naming_1" in logged


@pytest.mark.parametrize("logger", [False, True])
def test_logged_metrics_has_logged_epoch_value(pl, tmp_path, logger):
    """test_logger_connector.py::test_logged_metrics_has_logged_epoch_value: a logged `epoch` is not overridden."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            self.log("epoch", -batch_idx, logger=True)
            return super().training_step(batch, batch_idx)

    model = TestModel()
    trainer_kwargs = {
        "default_root_dir": tmp_path,
        "limit_train_batches": 2,
        "limit_val_batches": 0,
        "max_epochs": 1,
        "logger": False,
    }
    if logger:
        trainer_kwargs["logger"] = pl.loggers.CSVLogger(tmp_path)
    trainer = pl.Trainer(**trainer_kwargs)
    if not logger:
        with pytest.warns(match=r"log\('epoch', ..., logger=True\)` but have no logger"):
            trainer.fit(model)
    else:
        trainer.fit(model)

    assert trainer.logged_metrics == {"epoch": -1}


def fx_validator(pl):
    """The framework's table of where ``self.log`` is allowed (Lightning's ``_FxValidator``; the mirror's
    ``FxValidator``, the same table and checks)."""
    module = pl.module.trainer.connectors.logger_connector.fx_validator
    return getattr(module, "FxValidator", None) or module._FxValidator


def test_fx_validator(pl):
    """test_logger_connector.py::test_fx_validator: which Callback hooks may log, at which levels."""
    funcs_name = get_members(pl.Callback)

    callbacks_func = {
        "on_before_backward",
        "on_after_backward",
        "on_before_optimizer_step",
        "on_before_zero_grad",
        "on_fit_end",
        "on_fit_start",
        "on_exception",
        "on_load_checkpoint",
        "load_state_dict",
        "on_sanity_check_end",
        "on_sanity_check_start",
        "state_dict",
        "on_save_checkpoint",
        "on_test_batch_end",
        "on_test_batch_start",
        "on_test_end",
        "on_test_epoch_end",
        "on_test_epoch_start",
        "on_test_start",
        "on_train_batch_end",
        "on_train_batch_start",
        "on_train_end",
        "on_train_epoch_end",
        "on_train_epoch_start",
        "on_train_start",
        "on_validation_batch_end",
        "on_validation_batch_start",
        "on_validation_end",
        "on_validation_epoch_end",
        "on_validation_epoch_start",
        "on_validation_start",
        "on_predict_batch_end",
        "on_predict_batch_start",
        "on_predict_end",
        "on_predict_epoch_end",
        "on_predict_epoch_start",
        "on_predict_start",
        "setup",
        "teardown",
    }

    not_supported = {
        "on_fit_end",
        "on_fit_start",
        "on_exception",
        "on_load_checkpoint",
        "load_state_dict",
        "on_sanity_check_end",
        "on_sanity_check_start",
        "on_predict_batch_end",
        "on_predict_batch_start",
        "on_predict_end",
        "on_predict_epoch_end",
        "on_predict_epoch_start",
        "on_predict_start",
        "state_dict",
        "on_save_checkpoint",
        "on_test_end",
        "on_train_end",
        "on_validation_end",
        "setup",
        "teardown",
    }

    assert funcs_name == callbacks_func

    validator = fx_validator(pl)()

    for func_name in funcs_name:
        is_stage = "train" in func_name or "test" in func_name or "validation" in func_name
        is_start = "start" in func_name or "batch" in func_name
        is_epoch = "epoch" in func_name
        on_step = is_stage and not is_start and not is_epoch
        on_epoch = True
        allowed = (
            is_stage
            or "batch" in func_name
            or "epoch" in func_name
            or "grad" in func_name
            or "backward" in func_name
            or "optimizer_step" in func_name
        )
        allowed = (
            allowed
            and "pretrain" not in func_name
            and "predict" not in func_name
            and func_name not in ["on_train_end", "on_test_end", "on_validation_end"]
        )
        if allowed:
            validator.check_logging_levels(fx_name=func_name, on_step=on_step, on_epoch=on_epoch)
            if not is_start and is_stage:
                with pytest.raises(pl.MisconfigurationException, match="must be one of"):
                    validator.check_logging_levels(fx_name=func_name, on_step=True, on_epoch=on_epoch)
        else:
            assert func_name in not_supported
            with pytest.raises(pl.MisconfigurationException, match="You can't"):
                validator.check_logging(fx_name=func_name)

    with pytest.raises(RuntimeError, match="Logging inside `foo` is not implemented"):
        validator.check_logging("foo")
