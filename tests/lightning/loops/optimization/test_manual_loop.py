"""Ported from Lightning's tests/tests_pytorch/loops/optimization/test_manual_loop.py."""

import pytest


def test_warning_invalid_trainstep_output(pl, tmp_path):
    """test_manual_loop.py::test_warning_invalid_trainstep_output: under manual optimization training_step returns
    a tensor or nothing."""

    class InvalidTrainStepModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            return 5

    model = InvalidTrainStepModel()
    trainer = pl.Trainer(default_root_dir=tmp_path, fast_dev_run=1)

    with pytest.raises(pl.MisconfigurationException, match="return a Tensor or have no return"):
        trainer.fit(model)
