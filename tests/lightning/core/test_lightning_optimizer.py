"""Ported from Lightning's tests/tests_pytorch/core/test_lightning_optimizer.py."""


def test_lightning_optimizer(pl, tmp_path):
    """test_lightning_optimizer.py::test_lightning_optimizer: optimizers are wrapped by LightningOptimizer."""

    class TestModel(pl.BoringModel):
        def configure_optimizers(self):
            optimizer = pl.sgd(self.layer, lr=0.1)
            lr_scheduler = pl.step_lr(optimizer, step_size=1)
            return [optimizer], [lr_scheduler]

    model = TestModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path, limit_train_batches=1, limit_val_batches=1, max_epochs=1, enable_model_summary=False
    )
    trainer.fit(model)

    lightning_opt = model.optimizers()
    assert str(lightning_opt) == "Lightning" + str(lightning_opt.optimizer)
