"""Ported from Lightning's tests/tests_pytorch/models/test_hooks.py (the hook-call-order tests of the whole fit are
covered by tests/test_mx_hook_order.py, which runs one fit through both frameworks and compares every event)."""

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
