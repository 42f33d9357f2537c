"""Ported from Lightning's tests/tests_pytorch/models/test_hparams.py (the cases without OmegaConf, Hydra, fsspec
or pickling; checkpoints read through ``pl.load_checkpoint``)."""

import copy
import functools
import os
import types
from argparse import Namespace
from dataclasses import dataclass, field
from enum import Enum
from unittest import mock

import pytest


def decorate(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def hparams_classes(pl):
    """Lightning's module-level models and datamodules of test_hparams.py, on ``pl``."""
    any_loss = pl.nn.CrossEntropyLoss() if hasattr(pl.nn, "CrossEntropyLoss") else pl.nn.Identity()

    class SaveHparamsModel(pl.BoringModel):
        def __init__(self, hparams):
            super().__init__()
            self.save_hyperparameters(hparams)

    class SaveHparamsDecoratedModel(pl.BoringModel):
        @decorate
        @decorate
        def __init__(self, hparams, *my_args, **my_kwargs):
            super().__init__()
            self.save_hyperparameters(hparams)

    class SaveHparamsDataModule(pl.BoringDataModule):
        def __init__(self, hparams):
            super().__init__()
            self.save_hyperparameters(hparams)

    class SaveHparamsDecoratedDataModule(pl.BoringDataModule):
        @decorate
        @decorate
        def __init__(self, hparams, *my_args, **my_kwargs):
            super().__init__()
            self.save_hyperparameters(hparams)

    class CustomBoringModel(pl.BoringModel):
        def __init__(self, batch_size=64):
            super().__init__()
            self.save_hyperparameters()

    class SubClassBoringModel(CustomBoringModel):
        any_other_loss = any_loss

        def __init__(self, *args, subclass_arg=1200, **kwargs):
            super().__init__(*args, **kwargs)
            self.save_hyperparameters()

    class MixinForBoringModel:
        any_other_loss = any_loss

        def __init__(self, *args, subclass_arg=1200, **kwargs):
            super().__init__(*args, **kwargs)
            self.save_hyperparameters()

    class BoringModelWithMixin(MixinForBoringModel, CustomBoringModel):
        pass

    class BoringModelWithMixinAndInit(MixinForBoringModel, CustomBoringModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.save_hyperparameters()

    class NonSavingSubClassBoringModel(CustomBoringModel):
        any_other_loss = any_loss

        def __init__(self, *args, subclass_arg=1200, **kwargs):
            super().__init__(*args, **kwargs)

    class SubSubClassBoringModel(SubClassBoringModel):
        pass

    class UnconventionalArgsBoringModel(CustomBoringModel):
        """A model that has unconventional names for "self", "*args" and "**kwargs"."""

        def __init__(obj, *more_args, other_arg=300, **more_kwargs):
            super().__init__(*more_args, **more_kwargs)
            obj.save_hyperparameters()

    class _MetaType(type(pl.BoringModel)):
        def __call__(cls, *args, **kwargs):
            instance = super().__call__(*args, **kwargs)
            if hasattr(instance, "_after_init"):
                instance._after_init(**kwargs)
            return instance

    class MetaTypeBoringModel(CustomBoringModel, metaclass=_MetaType):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.save_hyperparameters()

    class NoArgsSubClassBoringModel(CustomBoringModel):
        def __init__(self):
            super().__init__()

    return types.SimpleNamespace(**{k: v for k, v in locals().items() if isinstance(v, type)})


def _raw_checkpoint_path(pl, trainer) -> str:
    raw_checkpoint_paths = os.listdir(trainer.checkpoint_callback.dirpath)
    raw_checkpoint_paths = [x for x in raw_checkpoint_paths if pl.checkpoint_suffix in x]
    assert raw_checkpoint_paths
    raw_checkpoint_path = raw_checkpoint_paths[0]
    return os.path.join(trainer.checkpoint_callback.dirpath, raw_checkpoint_path)


def _run_standard_hparams_test(pl, tmp_path, model, cls, datamodule=None, try_overwrite=False, weights_only=None):
    """Tests for the existence of an arg 'test_arg=14'."""
    obj = datamodule if issubclass(cls, pl.LightningDataModule) else model

    hparam_type = type(obj.hparams)
    # test proper property assignments
    assert obj.hparams.test_arg == 14

    # verify we can train
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, overfit_batches=2)
    trainer.fit(model, datamodule=datamodule if issubclass(cls, pl.LightningDataModule) else None)

    # make sure the raw checkpoint saved the properties
    raw_checkpoint_path = _raw_checkpoint_path(pl, trainer)
    raw_checkpoint = pl.load_checkpoint(raw_checkpoint_path)

    assert cls.CHECKPOINT_HYPER_PARAMS_KEY in raw_checkpoint
    assert raw_checkpoint[cls.CHECKPOINT_HYPER_PARAMS_KEY]["test_arg"] == 14

    # verify that model loads correctly
    obj2 = cls.load_from_checkpoint(raw_checkpoint_path, weights_only=weights_only)
    assert obj2.hparams.test_arg == 14

    assert isinstance(obj2.hparams, hparam_type)

    if try_overwrite:
        # verify that we can overwrite the property
        obj3 = cls.load_from_checkpoint(raw_checkpoint_path, test_arg=78, weights_only=weights_only)
        assert obj3.hparams.test_arg == 78

    return raw_checkpoint_path


STANDARD_CLASSES = ["SaveHparamsModel", "SaveHparamsDecoratedModel", "SaveHparamsDataModule",
                    "SaveHparamsDecoratedDataModule"]


@pytest.mark.parametrize("cls", STANDARD_CLASSES)
def test_namespace_hparams(pl, tmp_path, cls):
    """test_hparams.py::test_namespace_hparams: a Namespace saved whole, in the checkpoint, reloaded."""
    cls = getattr(hparams_classes(pl), cls)
    hparams = Namespace(test_arg=14)

    if issubclass(cls, pl.LightningDataModule):
        model = pl.BoringModel()
        datamodule = cls(hparams=hparams)
    else:
        model = cls(hparams=hparams)
        datamodule = None

    _run_standard_hparams_test(pl, tmp_path, model, cls, datamodule=datamodule)


@pytest.mark.parametrize("cls", STANDARD_CLASSES)
def test_dict_hparams(pl, tmp_path, cls):
    """test_hparams.py::test_dict_hparams: a dict saved whole, in the checkpoint, reloaded."""
    cls = getattr(hparams_classes(pl), cls)
    hparams = {"test_arg": 14}
    if issubclass(cls, pl.LightningDataModule):
        model = pl.BoringModel()
        datamodule = cls(hparams=hparams)
    else:
        model = cls(hparams=hparams)
        datamodule = None

    _run_standard_hparams_test(pl, tmp_path, model, cls, datamodule=datamodule)


def test_explicit_args_hparams(pl, tmp_path):
    """test_hparams.py::test_explicit_args_hparams: named arguments saved, one overridden at load."""

    class LocalModel(pl.BoringModel):
        def __init__(self, test_arg, test_arg2):
            super().__init__()
            self.save_hyperparameters("test_arg", "test_arg2")

    model = LocalModel(test_arg=14, test_arg2=90)

    raw_checkpoint_path = _run_standard_hparams_test(pl, tmp_path, model, LocalModel)
    model = LocalModel.load_from_checkpoint(raw_checkpoint_path, test_arg2=120)

    assert model.hparams.test_arg2 == 120


def test_implicit_args_hparams(pl, tmp_path):
    """test_hparams.py::test_implicit_args_hparams: every argument saved, one overridden at load."""

    class LocalModel(pl.BoringModel):
        def __init__(self, test_arg, test_arg2):
            super().__init__()
            self.save_hyperparameters()

    model = LocalModel(test_arg=14, test_arg2=90)

    raw_checkpoint_path = _run_standard_hparams_test(pl, tmp_path, model, LocalModel)
    model = LocalModel.load_from_checkpoint(raw_checkpoint_path, test_arg2=120)

    assert model.hparams.test_arg2 == 120


def test_explicit_missing_args_hparams(pl, tmp_path):
    """test_hparams.py::test_explicit_missing_args_hparams: an argument not saved must be given at load and is
    not a hyper-parameter then."""

    class LocalModel(pl.BoringModel):
        def __init__(self, test_arg, test_arg2):
            super().__init__()
            self.save_hyperparameters("test_arg")

    model = LocalModel(test_arg=14, test_arg2=90)

    assert model.hparams.test_arg == 14

    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=2, overfit_batches=0.5)
    trainer.fit(model)

    raw_checkpoint_path = _raw_checkpoint_path(pl, trainer)
    raw_checkpoint = pl.load_checkpoint(raw_checkpoint_path)
    assert pl.LightningModule.CHECKPOINT_HYPER_PARAMS_KEY in raw_checkpoint
    assert raw_checkpoint[pl.LightningModule.CHECKPOINT_HYPER_PARAMS_KEY]["test_arg"] == 14

    model = LocalModel.load_from_checkpoint(raw_checkpoint_path, test_arg2=123)
    assert model.hparams.test_arg == 14
    assert "test_arg2" not in model.hparams  # test_arg2 is not registered in class init
    assert raw_checkpoint_path


def test_class_nesting(pl):
    """test_hparams.py::test_class_nesting: a module made inside other functions and classes has hparams."""

    class MyModule(pl.LightningModule):
        def forward(self): ...

    # make sure PL modules are always nn.Module
    a = MyModule()
    assert isinstance(a, pl.nn.Module)

    def test_outside():
        a = MyModule()
        _ = a.hparams

    class A:
        def test(self):
            a = MyModule()
            _ = a.hparams

        def test2(self):
            test_outside()

    test_outside()
    A().test2()
    A().test()


@pytest.mark.parametrize(
    "cls",
    [
        "CustomBoringModel",
        "SubClassBoringModel",
        "NonSavingSubClassBoringModel",
        "SubSubClassBoringModel",
        "UnconventionalArgsBoringModel",
        "BoringModelWithMixin",
        "BoringModelWithMixinAndInit",
        "MetaTypeBoringModel",
    ],
)
def test_collect_init_arguments(pl, tmp_path, cls):
    """test_hparams.py::test_collect_init_arguments: the arguments of every __init__ of the class chain, saved
    and reloaded (the cases whose hyper-parameters are plain values)."""
    classes = hparams_classes(pl)
    cls = getattr(classes, cls)

    model = cls()
    assert model.hparams.batch_size == 64
    model = cls(batch_size=179)
    assert model.hparams.batch_size == 179

    if isinstance(model, (classes.SubClassBoringModel, classes.NonSavingSubClassBoringModel,
                          classes.MixinForBoringModel)):
        assert model.hparams.subclass_arg == 1200

    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=2, overfit_batches=0.5)
    trainer.fit(model)

    raw_checkpoint_path = _raw_checkpoint_path(pl, trainer)

    raw_checkpoint = pl.load_checkpoint(raw_checkpoint_path)
    assert pl.LightningModule.CHECKPOINT_HYPER_PARAMS_KEY in raw_checkpoint
    assert raw_checkpoint[pl.LightningModule.CHECKPOINT_HYPER_PARAMS_KEY]["batch_size"] == 179

    model = cls.load_from_checkpoint(raw_checkpoint_path)
    assert model.hparams.batch_size == 179

    model = cls.load_from_checkpoint(raw_checkpoint_path, batch_size=99)
    assert model.hparams.batch_size == 99


def test_collect_init_arguments_in_other_methods(pl):
    """test_hparams.py::test_collect_init_arguments_in_other_methods: a module built by another method's call."""
    CustomBoringModel = hparams_classes(pl).CustomBoringModel

    class _ABCModelCreator:
        def init(self, model, **kwargs):
            self.model = model
            return self.model

    class ConcreteModelCreator(_ABCModelCreator):
        def init(self, model=None, **kwargs):
            return super().init(model=model or CustomBoringModel(**kwargs))

    model_creator = ConcreteModelCreator()
    model = model_creator.init(batch_size=123)
    assert model.hparams.batch_size == 123


BASE_CLASSES = ["HyperparametersMixin", "LightningModule", "LightningDataModule"]


@pytest.mark.parametrize("base_class", BASE_CLASSES)
def test_save_hyperparameters_under_composition(pl, base_class):
    """test_hparams.py::test_save_hyperparameters_under_composition: a non-Lightning parent's arguments are not
    collected."""
    base_class = getattr(pl, base_class)

    class ChildInComposition(base_class):
        def __init__(self, same_arg):
            super().__init__()
            self.save_hyperparameters()

    class NotPLSubclass:  # intentionally not subclassing LightningModule/LightningDataModule
        def __init__(self, same_arg="parent_default", other_arg="other"):
            self.child = ChildInComposition(same_arg="cocofruit")

    parent = NotPLSubclass()
    assert parent.child.hparams == {"same_arg": "cocofruit"}


@pytest.mark.parametrize("base_class", BASE_CLASSES)
def test_save_hyperparameters_ignore(pl, base_class):
    """test_hparams.py::test_save_hyperparameters_ignore: ignore drops a name."""
    base_class = getattr(pl, base_class)

    class PLSubclass(base_class):
        def __init__(self, learning_rate=1e-3, optimizer="adam"):
            super().__init__()
            self.save_hyperparameters(ignore=["learning_rate"])

    pl_instance = PLSubclass(learning_rate=0.01, optimizer="sgd")
    assert pl_instance.hparams == {"optimizer": "sgd"}


@pytest.mark.parametrize("base_class", BASE_CLASSES)
def test_save_hyperparameters_ignore_under_composition(pl, base_class):
    """test_hparams.py::test_save_hyperparameters_ignore_under_composition: a composed child's ignore applies to
    what it collects from its Lightning parent."""
    base_class = getattr(pl, base_class)

    class ChildModule(base_class):
        def __init__(self, dropout, activation, init_method):
            super().__init__()
            self.save_hyperparameters(ignore=["dropout", "activation"])

    class ParentModule(base_class):
        def __init__(self, batch_size, optimizer):
            super().__init__()
            self.child = ChildModule(dropout=0.1, activation="relu", init_method="xavier")

    class PipelineWrapper:  # not a Lightning subclass on purpose
        def __init__(self, run_id="abc123", seed=42):
            self.parent_module = ParentModule(batch_size=64, optimizer="adam")

    pipeline = PipelineWrapper()
    assert pipeline.parent_module.child.hparams == {"init_method": "xavier", "batch_size": 64, "optimizer": "adam"}


def test_collect_init_arguments_with_local_vars(pl):
    """test_hparams.py::test_collect_init_arguments_with_local_vars: arguments only, as they are at the call."""

    class LocalVariableModelSuperFirst(pl.BoringModel):
        def __init__(self, arg1, arg2, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.argument1 = arg1  # arg2 intentionally not set
            arg1 = "overwritten"
            local_var = 1234  # noqa: F841
            self.save_hyperparameters()  # this is intentionally here at the end

    model = LocalVariableModelSuperFirst(arg1=1, arg2=2)
    assert "local_var" not in model.hparams
    assert model.hparams["arg1"] == "overwritten"
    assert model.hparams["arg2"] == 2


@pytest.mark.parametrize(("cls", "config"), [("AnotherArgModel", {"arg1": 42}),
                                             ("OtherArgsModel", {"arg1": 3.14, "arg2": "abc"})])
def test_single_config_models_fail(pl, tmp_path, cls, config):
    """test_hparams.py::test_single_config_models_fail: a primitive is not a hyper-parameter container."""

    class AnotherArgModel(pl.BoringModel):
        def __init__(self, arg1):
            super().__init__()
            self.save_hyperparameters(arg1)

    class OtherArgsModel(pl.BoringModel):
        def __init__(self, arg1, arg2):
            super().__init__()
            self.save_hyperparameters(arg1, arg2)

    cls = {"AnotherArgModel": AnotherArgModel, "OtherArgsModel": OtherArgsModel}[cls]
    with pytest.raises(ValueError, match=r"Primitives \(<class 'bool'>*"):
        _ = cls(**config)


def test_save_hparams_to_yaml(pl, tmp_path):
    """test_hparams.py::test_save_hparams_to_yaml: a dict, Namespace or AttributeDict round-trips through YAML,
    an Enum as its name."""

    class Options(str, Enum):
        option1name = "option1val"
        option2name = "option2val"
        option3name = "option3val"

    hparams = {
        "batch_size": 32,
        "learning_rate": 0.001,
        "data_root": "./any/path/here",
        "nested": {"any_num": 123, "anystr": "abcd"},
        "switch": Options.option3name,
    }
    path_yaml = os.path.join(tmp_path, "testing-hparams.yaml")

    def _compare_params(loaded_params, default_params: dict):
        assert isinstance(loaded_params, dict)
        assert loaded_params.keys() == default_params.keys()
        for k, v in default_params.items():
            if isinstance(v, Enum):
                assert v.name == loaded_params[k]
            else:
                assert v == loaded_params[k]

    pl.save_hparams_to_yaml(path_yaml, hparams)
    _compare_params(pl.load_hparams_from_yaml(path_yaml, use_omegaconf=False), hparams)

    pl.save_hparams_to_yaml(path_yaml, Namespace(**hparams))
    _compare_params(pl.load_hparams_from_yaml(path_yaml, use_omegaconf=False), hparams)

    pl.save_hparams_to_yaml(path_yaml, pl.AttributeDict(hparams))
    _compare_params(pl.load_hparams_from_yaml(path_yaml, use_omegaconf=False), hparams)


def test_save_hparams_to_yaml_warning(pl, tmp_path):
    """test_hparams.py::test_save_hparams_to_yaml_warning: a value YAML cannot write is left out with a warning."""
    path_yaml = tmp_path / "hparams.yaml"
    hparams = {"torch_type": pl.tensor(0.0).dtype}
    with pytest.warns(UserWarning, match="Skipping 'torch_type' parameter"):
        pl.save_hparams_to_yaml(path_yaml, hparams)


@pytest.mark.parametrize("cls", ["BoringModel", "NoArgsSubClassBoringModel"])
def test_model_nohparams_train_test(pl, tmp_path, cls):
    """test_hparams.py::test_model_nohparams_train_test: models whose __init__ takes no argument fit and test."""
    cls = pl.BoringModel if cls == "BoringModel" else hparams_classes(pl).NoArgsSubClassBoringModel
    model = cls()
    trainer = pl.Trainer(max_epochs=1, default_root_dir=tmp_path)

    train_loader = pl.DataLoader(pl.RandomDataset(32, 64), batch_size=32)
    trainer.fit(model, train_loader)

    test_loader = pl.DataLoader(pl.RandomDataset(32, 64), batch_size=32)
    trainer.test(dataloaders=test_loader)


def test_model_ignores_non_exist_kwargument(pl, tmp_path):
    """test_hparams.py::test_model_ignores_non_exist_kwargument: a keyword __init__ does not take is dropped."""

    class LocalModel(pl.BoringModel):
        def __init__(self, batch_size=15):
            super().__init__()
            self.save_hyperparameters()

    model = LocalModel()
    assert model.hparams.batch_size == 15

    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1)
    trainer.fit(model)

    raw_checkpoint_path = _raw_checkpoint_path(pl, trainer)
    model = LocalModel.load_from_checkpoint(raw_checkpoint_path, non_exist_kwarg=99)
    assert "non_exist_kwarg" not in model.hparams


def test_args(pl, tmp_path):
    """test_hparams.py::test_args: a subclass taking *args/**kwargs gets the checkpoint's hparams as keywords."""

    class SuperClassPositionalArgs(pl.BoringModel):
        def __init__(self, hparams):
            super().__init__()
            self._hparams = hparams  # pretend BoringModel did not call self.save_hyperparameters()

    class SubClassVarArgs(SuperClassPositionalArgs):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)

    hparams = {"test": 1}
    model = SubClassVarArgs(hparams)
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1)
    trainer.fit(model)

    raw_checkpoint_path = _raw_checkpoint_path(pl, trainer)
    with pytest.raises(TypeError, match=r"__init__\(\) got an unexpected keyword argument 'test'"):
        SubClassVarArgs.load_from_checkpoint(raw_checkpoint_path)


def test_init_arg_with_runtime_change(pl, tmp_path):
    """test_hparams.py::test_init_arg_with_runtime_change: hparams.yaml holds the initial values."""

    class RuntimeParamChangeModelSaving(pl.BoringModel):
        def __init__(self, **kwargs):
            super().__init__()
            self.save_hyperparameters()

    model = RuntimeParamChangeModelSaving(running_arg=123)
    assert model.hparams.running_arg == 123
    model.hparams.running_arg = -1
    assert model.hparams.running_arg == -1

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=2,
        limit_test_batches=2,
        max_epochs=1,
        logger=pl.loggers.TensorBoardLogger(tmp_path),
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.fit(model)

    path_yaml = os.path.join(trainer.logger.log_dir, trainer.logger.NAME_HPARAMS_FILE)
    hparams = pl.load_hparams_from_yaml(path_yaml)
    assert hparams.get("running_arg") == 123


@pytest.mark.parametrize("ignore", ["arg2", ("arg2", "arg3")])
def test_ignore_args_list_hparams(pl, tmp_path, ignore):
    """test_hparams.py::test_ignore_args_list_hparams: ignored arguments are neither hparams nor reloaded."""

    class LocalModel(pl.BoringModel):
        def __init__(self, arg1, arg2, arg3):
            super().__init__()
            self.save_hyperparameters(ignore=ignore)

    model = LocalModel(arg1=14, arg2=90, arg3=50)

    assert model.hparams.arg1 == 14

    ignore_args = ignore if isinstance(ignore, (list, tuple)) else [ignore]
    for arg in ignore_args:
        assert arg not in model.hparams

    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=2, overfit_batches=0.5)
    trainer.fit(model)

    raw_checkpoint_path = _raw_checkpoint_path(pl, trainer)
    raw_checkpoint = pl.load_checkpoint(raw_checkpoint_path)
    assert pl.LightningModule.CHECKPOINT_HYPER_PARAMS_KEY in raw_checkpoint
    assert raw_checkpoint[pl.LightningModule.CHECKPOINT_HYPER_PARAMS_KEY]["arg1"] == 14

    model = LocalModel.load_from_checkpoint(raw_checkpoint_path, arg2=123, arg3=100)
    assert model.hparams.arg1 == 14
    for arg in ignore_args:
        assert arg not in model.hparams


@pytest.mark.parametrize("ignore", ["arg2", ("arg2", "arg3")])
def test_hparams_ignore_in_subclass_overrides_base(pl, tmp_path, ignore):
    """test_hparams.py::test_hparams_ignore_in_subclass_overrides_base: a subclass's ignore drops what its base
    saved, and what the base ignored the subclass may save."""

    class BaseBoringModel(pl.BoringModel):
        def __init__(self, arg1, arg2, arg3):
            super().__init__()
            self.save_hyperparameters(ignore="arg1")

    class LocalModel(BaseBoringModel):
        def __init__(self, arg1, arg2, arg3):
            super().__init__(arg1=arg1, arg2=arg2, arg3=arg3)
            self.save_hyperparameters(ignore=ignore)

    model = LocalModel(arg1=14, arg2=90, arg3=50)

    assert model.hparams.arg1 == 14
    ignore_args = ignore if isinstance(ignore, (list, tuple)) else [ignore]
    for arg in ignore_args:
        assert arg not in model.hparams


@pytest.mark.parametrize("model", ["IgnoreAllParametersModel", "NoParametersModel"])
def test_save_no_parameters(pl, model):
    """test_hparams.py::test_save_no_parameters: nothing to save is no error."""

    class IgnoreAllParametersModel(pl.BoringModel):
        def __init__(self, arg1, arg2, arg3):
            super().__init__()
            self.save_hyperparameters(ignore=("arg1", "arg2", "arg3"))

    class NoParametersModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.save_hyperparameters()

    model = (IgnoreAllParametersModel(arg1=14, arg2=90, arg3=50) if model == "IgnoreAllParametersModel"
             else NoParametersModel())
    assert model.hparams == {}
    assert model._hparams_initial == {}


def container_models(pl):
    class HparamsKwargsContainerModel(pl.BoringModel):
        def __init__(self, **kwargs):
            super().__init__()
            self.save_hyperparameters(kwargs)

    class HparamsNamespaceContainerModel(pl.BoringModel):
        def __init__(self, config):
            super().__init__()
            self.save_hyperparameters(config)

    return HparamsKwargsContainerModel, HparamsNamespaceContainerModel


def test_empty_hparams_container(pl, tmp_path):
    """test_hparams.py::test_empty_hparams_container: an empty container saves nothing."""
    HparamsKwargsContainerModel, HparamsNamespaceContainerModel = container_models(pl)
    model = HparamsKwargsContainerModel()
    assert not model.hparams
    model = HparamsNamespaceContainerModel(Namespace())
    assert not model.hparams


def test_hparams_name_from_container(pl, tmp_path):
    """test_hparams.py::test_hparams_name_from_container: a container's argument name is recorded."""
    HparamsKwargsContainerModel, HparamsNamespaceContainerModel = container_models(pl)
    model = HparamsKwargsContainerModel(a=1, b=2)
    assert model._hparams_name is None
    model = HparamsNamespaceContainerModel(Namespace(a=1, b=2))
    assert model._hparams_name == "config"


def test_dataclass_lightning_module(pl, tmp_path):
    """test_hparams.py::test_dataclass_lightning_module: a dataclass module saves its init fields."""

    @dataclass
    class DataClassModel(pl.BoringModel):
        mandatory: int
        optional: str = "optional"
        ignore_me: bool = False

        def __post_init__(self):
            super().__init__()
            self.save_hyperparameters(ignore=("ignore_me",))

    model = DataClassModel(33, optional="cocofruit")
    assert model.hparams == {"mandatory": 33, "optional": "cocofruit"}


def test_dataclass_with_init_false_fields(pl):
    """test_hparams.py::test_dataclass_with_init_false_fields: fields with init=False are not hyper-parameters."""

    @dataclass
    class DataClassWithInitFalseFieldsModel(pl.BoringModel):
        mandatory: int
        optional: str = "optional"
        non_init_field: int = field(default=999, init=False)
        another_non_init: str = field(default="not_in_init", init=False)

        def __post_init__(self):
            super().__init__()
            self.save_hyperparameters()

    model = DataClassWithInitFalseFieldsModel(33, optional="cocofruit")

    expected_hparams = {"mandatory": 33, "optional": "cocofruit"}
    assert model.hparams == expected_hparams

    assert model.non_init_field == 999
    assert model.another_non_init == "not_in_init"
    assert "non_init_field" not in model.hparams
    assert "another_non_init" not in model.hparams


def datamodules(pl):
    class DataModuleWithoutHparams(pl.LightningDataModule):
        def train_dataloader(self, *args, **kwargs):
            return pl.DataLoader(pl.RandomDataset(32, 64), batch_size=32)

    class DataModuleWithHparams(pl.LightningDataModule):
        def __init__(self, hparams):
            super().__init__()
            self.save_hyperparameters(hparams)

        def train_dataloader(self, *args, **kwargs):
            return pl.DataLoader(pl.RandomDataset(32, 64), batch_size=32)

    return DataModuleWithoutHparams, DataModuleWithHparams


def _get_mock_logger(tmp_path):
    mock_logger = mock.MagicMock(name="logger")
    mock_logger.name = "mock_logger"
    mock_logger.save_dir = tmp_path
    mock_logger.version = "0"
    del mock_logger.__iter__
    return mock_logger


@pytest.mark.parametrize("model", ["SaveHparamsModel", "NoHparamsModel"])
@pytest.mark.parametrize("data", ["DataModuleWithHparams", "DataModuleWithoutHparams"])
def test_adding_datamodule_hparams(pl, tmp_path, model, data):
    """test_hparams.py::test_adding_datamodule_hparams: the module's and the datamodule's hparams logged merged."""
    DataModuleWithoutHparams, DataModuleWithHparams = datamodules(pl)
    model = (hparams_classes(pl).SaveHparamsModel({"arg1": 5, "arg2": "abc"}) if model == "SaveHparamsModel"
             else pl.BoringModel())
    data = DataModuleWithHparams({"data_dir": "foo"}) if data == "DataModuleWithHparams" else DataModuleWithoutHparams()
    org_model_hparams = copy.deepcopy(model.hparams_initial)
    org_data_hparams = copy.deepcopy(data.hparams_initial)

    mock_logger = _get_mock_logger(tmp_path)
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, logger=mock_logger)
    trainer.fit(model, datamodule=data)

    # Hparams of model and data were not modified
    assert org_model_hparams == model.hparams
    assert org_data_hparams == data.hparams

    # Merged hparams were logged
    merged_hparams = copy.deepcopy(org_model_hparams)
    merged_hparams.update(org_data_hparams)
    if merged_hparams:
        mock_logger.log_hyperparams.assert_called_with(merged_hparams)
    else:
        mock_logger.log_hyperparams.assert_not_called()


def test_no_datamodule_for_hparams(pl, tmp_path):
    """test_hparams.py::test_no_datamodule_for_hparams: a datamodule without hparams adds nothing."""
    DataModuleWithoutHparams, _ = datamodules(pl)
    model = hparams_classes(pl).SaveHparamsModel({"arg1": 5, "arg2": "abc"})
    org_model_hparams = copy.deepcopy(model.hparams_initial)
    data = DataModuleWithoutHparams()
    data.setup("fit")

    mock_logger = _get_mock_logger(tmp_path)
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, logger=mock_logger)
    trainer.fit(model, datamodule=data)

    mock_logger.log_hyperparams.assert_called_with(org_model_hparams)


def test_colliding_hparams(pl, tmp_path):
    """test_hparams.py::test_colliding_hparams: the same key with different values is an error."""
    _, DataModuleWithHparams = datamodules(pl)
    model = hparams_classes(pl).SaveHparamsModel({"data_dir": "abc", "arg2": "abc"})
    data = DataModuleWithHparams({"data_dir": "foo"})
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=1, logger=pl.loggers.CSVLogger(tmp_path))
    with pytest.raises(RuntimeError, match=r"Error while merging hparams:"):
        trainer.fit(model, datamodule=data)


def test_nn_modules_warning_when_saved_as_hparams(pl):
    """test_hparams.py::test_nn_modules_warning_when_saved_as_hparams: a module among the hparams is a warning."""

    class TorchModule(pl.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = pl.nn.Linear(4, 5)

    class CustomBoringModelWarn(pl.BoringModel):
        def __init__(self, encoder, decoder, other_hparam=7):
            super().__init__()
            self.save_hyperparameters()

    with pytest.warns(UserWarning, match="is an instance of `nn.Module` and is already saved"):
        model = CustomBoringModelWarn(encoder=TorchModule(), decoder=TorchModule())

    assert list(model.hparams) == ["encoder", "decoder", "other_hparam"]

    class CustomBoringModelNoWarn(pl.BoringModel):
        def __init__(self, encoder, decoder, other_hparam=7):
            super().__init__()
            self.save_hyperparameters("other_hparam")

    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*is an instance of `nn.Module` and is already saved")
        model = CustomBoringModelNoWarn(encoder=TorchModule(), decoder=TorchModule())

    assert list(model.hparams) == ["other_hparam"]
