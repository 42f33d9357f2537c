"""Ported from Lightning's tests/tests_pytorch/checkpointing/test_trainer_checkpoint.py (without the XLA storage
options case)."""

import os


def test_finetuning_with_ckpt_path(pl, tmp_path):
    """test_trainer_checkpoint.py::test_finetuning_with_ckpt_path: each resumed fit's default callback points at
    its own best checkpoint."""
    S = pl.checkpoint_suffix
    checkpoint_callback = pl.callbacks.ModelCheckpoint(monitor="val_loss", dirpath=tmp_path, filename="{epoch:02d}",
                                                       save_top_k=-1)

    class ExtendedBoringModel(pl.BoringModel):
        def configure_optimizers(self):
            optimizer = pl.sgd(self.layer, lr=0.001)
            lr_scheduler = pl.step_lr(optimizer, step_size=1)
            return [optimizer], [lr_scheduler]

        def validation_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("val_loss", loss, on_epoch=True, prog_bar=True)

    model = ExtendedBoringModel()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=12,
        limit_val_batches=6,
        limit_test_batches=12,
        callbacks=[checkpoint_callback],
        logger=False,
    )
    trainer.fit(model)
    assert os.listdir(tmp_path) == [f"epoch=00{S}"]

    best_model_paths = [checkpoint_callback.best_model_path]
    for idx in range(3, 6):
        # load from checkpoint
        trainer = pl.Trainer(
            default_root_dir=tmp_path,
            max_epochs=idx,
            limit_train_batches=12,
            limit_val_batches=12,
            limit_test_batches=12,
            enable_progress_bar=False,
        )
        trainer.fit(model, ckpt_path=best_model_paths[-1])
        trainer.test()
        best_model_paths.append(trainer.checkpoint_callback.best_model_path)

    for idx, best_model_path in enumerate(best_model_paths):
        if idx == 0:
            assert best_model_path.endswith(f"epoch=0{idx}{S}")
        else:
            assert f"epoch={idx + 1}" in best_model_path
