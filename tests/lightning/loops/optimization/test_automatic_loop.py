"""Ported from Lightning's tests/tests_pytorch/loops/optimization/test_automatic_loop.py."""

from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from typing import Generic, TypeVar

import pytest

T = TypeVar("T")


class OutputMapping(Generic[T], Mapping[str, T]):
    def __init__(self, d: dict[str, T]) -> None:
        self.d: dict[str, T] = d

    def __iter__(self) -> Iterator[str]:
        return iter(self.d)

    def __len__(self) -> int:
        return len(self.d)

    def __getitem__(self, key: str) -> T:
        return self.d[key]


@pytest.mark.parametrize(
    "case",
    [
        (5.0, "must return a Tensor, a dict, or None"),
        ({"a": 5}, "the 'loss' key needs to be present"),
        (OutputMapping({"a": 5}), "the 'loss' key needs to be present"),
    ],
)
def test_warning_invalid_trainstep_output(pl, tmp_path, case):
    """test_automatic_loop.py::test_warning_invalid_trainstep_output: what training_step may return, checked in
    Lightning's words."""
    output, match = case

    class InvalidTrainStepModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            return output

    model = InvalidTrainStepModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=1)

    with pytest.raises(pl.MisconfigurationException, match=match):
        trainer.fit(model)


@pytest.mark.mirror_differs("not yet: the mirror's Trainer refuses barebones=True")
@pytest.mark.parametrize("world_size", [1, 2])
def test_skip_training_step_not_allowed(pl, world_size, tmp_path):
    """test_automatic_loop.py::test_skip_training_step_not_allowed: skipping the training_step in distributed
    training is not allowed."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx):
            return None

    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_steps=1,
        barebones=True,
    )
    trainer.strategy.world_size = world_size  # mock world size without launching processes
    error_context = (
        pytest.raises(RuntimeError, match="Skipping the `training_step` .* is not supported")
        if world_size > 1
        else nullcontext()
    )
    with error_context:
        trainer.fit(model)
