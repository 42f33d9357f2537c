"""Ported from Lightning's tests/tests_pytorch/core/test_saving.py (not the CUDA/MPS placements, torch
``map_location`` objects or LightningCLI's instantiator)."""

from unittest.mock import ANY, Mock

import pytest


def create_boring_checkpoint(pl, tmp_path, model, accelerator="cpu"):
    checkpoint_callback = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="checkpoint")
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        devices=1,
        accelerator=accelerator,
        max_epochs=1,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[checkpoint_callback],
    )
    trainer.fit(model)


@pytest.mark.mirror_differs("MLX: a module has no torch device (`model.device`): MLX memory is unified")
def test_load_from_checkpoint_warn_on_empty_state_dict(pl, tmp_path):
    """test_saving.py::test_load_from_checkpoint_warn_on_empty_state_dict: a checkpoint without weights loads with
    a warning."""
    create_boring_checkpoint(pl, tmp_path, pl.BoringModel(), accelerator="cpu")
    path = tmp_path / f"checkpoint{pl.checkpoint_suffix}"
    checkpoint = pl.load_checkpoint(path)
    checkpoint["state_dict"] = {}
    pl.save_checkpoint(checkpoint, path)

    with pytest.warns(UserWarning, match="contains no parameters"):
        model = pl.BoringModel.load_from_checkpoint(path, strict=False)
    assert model.device.type == "cpu"


@pytest.mark.parametrize(
    ("strict", "strict_loading", "expected"),
    [
        (None, None, True),
        (None, True, True),
        (None, False, False),
        (True, None, True),
        (True, True, True),
        (True, False, "error"),
        (False, None, False),
        (False, True, "error"),
        (False, False, False),
    ],
)
def test_load_from_checkpoint_strict(pl, strict, strict_loading, expected, tmp_path):
    """test_saving.py::test_load_from_checkpoint_strict: the strict argument and the module's strict_loading, and
    their conflict."""

    class LoadingModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.strict_loading = strict_loading

    LoadingModel.load_state_dict = Mock()

    create_boring_checkpoint(pl, tmp_path, LoadingModel(), accelerator="cpu")
    path = tmp_path / f"checkpoint{pl.checkpoint_suffix}"

    if expected == "error":
        with pytest.raises(ValueError, match="in conflict with .*strict_loading"):
            LoadingModel.load_from_checkpoint(path, strict=strict)
    else:
        model = LoadingModel.load_from_checkpoint(path, strict=strict)
        model.load_state_dict.assert_called_once_with(ANY, strict=expected)


@pytest.mark.mirror_differs("MLX: a module has no torch device (`model.device`): MLX memory is unified")
@pytest.mark.parametrize("map_location", [None, "cpu"])
def test_load_from_checkpoint_map_location_cpu(pl, tmp_path, map_location):
    """test_saving.py::test_load_from_checkpoint_map_location_cpu (the map_locations that are not torch objects):
    a module and a datamodule build from a checkpoint."""
    create_boring_checkpoint(pl, tmp_path, pl.BoringModel(), accelerator="cpu")
    model = pl.BoringModel.load_from_checkpoint(f"{tmp_path}/checkpoint{pl.checkpoint_suffix}",
                                                map_location=map_location)
    _ = pl.BoringDataModule.load_from_checkpoint(f"{tmp_path}/checkpoint{pl.checkpoint_suffix}",
                                                 map_location=map_location)
    assert model.device.type == "cpu"
