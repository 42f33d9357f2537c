"""Ported from Lightning's tests/tests_pytorch/trainer/optimization/test_multiple_optimizers.py."""

import pytest


def test_multiple_optimizers_automatic_optimization_raises(pl):
    """test_multiple_optimizers.py::test_multiple_optimizers_automatic_optimization_raises: multiple optimizers
    in automatic optimization are not allowed."""

    class TestModel(pl.BoringModel):
        def training_step(self, batch, batch_idx, optimizer_idx):
            return super().training_step(batch, batch_idx)

    model = TestModel()
    model.automatic_optimization = True

    trainer = pl.Trainer(logger=False, enable_checkpointing=False)
    with pytest.raises(RuntimeError, match="Remove the `optimizer_idx` argument from `training_step`"):
        trainer.fit(model)

    class TestModel(pl.BoringModel):
        def configure_optimizers(self):
            return pl.adam(self), pl.adam(self)

    model = TestModel()
    model.automatic_optimization = True

    trainer = pl.Trainer(logger=False, enable_checkpointing=False)
    with pytest.raises(RuntimeError, match="multiple optimizers is only supported with manual optimization"):
        trainer.fit(model)


@pytest.mark.mirror_differs("MLX has no autograd tape: `self.manual_backward(loss)` of a computed loss cannot work, "
                            "the mirror takes the function, `self.manual_backward(loss_fn, *args)`")
def test_multiple_optimizers_manual(pl, tmp_path):
    """test_multiple_optimizers.py::test_multiple_optimizers_manual: two optimizers stepped by hand."""

    class TestModel(pl.BoringModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def configure_optimizers(self):
            opt_a = pl.sgd(self.layer, lr=0.001)
            opt_b = pl.sgd(self.layer, lr=0.001)
            return opt_a, opt_b

        def training_step(self, batch, batch_idx):
            self.training_step_called = True

            # manual optimization
            opt_a, opt_b = self.optimizers()
            loss_1 = self.step(batch[0])

            # fake generator
            self.manual_backward(loss_1)
            opt_a.step()
            opt_a.zero_grad()

            # fake discriminator
            loss_2 = self.step(batch[0])
            self.manual_backward(loss_2)
            opt_b.step()
            opt_b.zero_grad()

    model = TestModel()
    model.val_dataloader = None

    trainer = pl.Trainer(
        default_root_dir=tmp_path, limit_train_batches=2, max_epochs=1, log_every_n_steps=1, enable_model_summary=False
    )
    trainer.fit(model)

    assert model.training_step_called
