"""Ported from Lightning's tests/tests_pytorch/loops/test_training_loop_flow_dict.py: the training loop with a dict
from ``training_step``, on Lightning's ``DeterministicModel`` (``pl.DeterministicModel``)."""


def _fit(pl, model, tmp_path):
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=2,
        max_epochs=2,
        log_every_n_steps=1,
        enable_model_summary=False,
    )
    trainer.fit(model)


def test__training_step__flow_dict(pl, tmp_path):
    """test_training_loop_flow_dict.py::test__training_step__flow_dict: only training_step can be used."""

    class TestModel(pl.DeterministicModel):
        def training_step(self, batch, batch_idx):
            acc = self.step(batch, batch_idx)
            acc = acc + batch_idx
            self.training_step_called = True
            return {"loss": acc, "random_things": [1, "a", pl.tensor(2)]}

        def backward(self, loss):
            return pl.LightningModule.backward(self, loss)

    model = TestModel()
    model.val_dataloader = None
    _fit(pl, model, tmp_path)

    # make sure correct steps were called
    assert model.training_step_called


def test__training_step__tr_batch_end__flow_dict(pl, tmp_path):
    """test_training_loop_flow_dict.py::test__training_step__tr_batch_end__flow_dict: on_train_batch_end gets the
    step's dict, without a graph."""

    class TestModel(pl.DeterministicModel):
        def training_step(self, batch, batch_idx):
            acc = self.step(batch, batch_idx)
            acc = acc + batch_idx
            self.training_step_called = True
            self.out = {"loss": acc, "random_things": [1, "a", pl.tensor(2)]}
            return self.out

        def on_train_batch_end(self, tr_step_output, *_):
            assert self.count_num_graphs(tr_step_output) == 0

        def backward(self, loss):
            return pl.LightningModule.backward(self, loss)

    model = TestModel()
    model.val_dataloader = None
    _fit(pl, model, tmp_path)

    # make sure correct steps were called
    assert model.training_step_called


def test__training_step__epoch_end__flow_dict(pl, tmp_path):
    """test_training_loop_flow_dict.py::test__training_step__epoch_end__flow_dict: extra keys of any type ride
    along."""

    class TestModel(pl.DeterministicModel):
        def training_step(self, batch, batch_idx):
            acc = self.step(batch, batch_idx)
            acc = acc + batch_idx

            self.training_step_called = True
            return {"loss": acc, "random_things": [1, "a", pl.tensor(2)], "batch_idx": batch_idx}

        def backward(self, loss):
            return pl.LightningModule.backward(self, loss)

    model = TestModel()
    model.val_dataloader = None
    _fit(pl, model, tmp_path)

    # make sure correct steps were called
    assert model.training_step_called


def test__training_step__batch_end__epoch_end__flow_dict(pl, tmp_path):
    """test_training_loop_flow_dict.py::test__training_step__batch_end__epoch_end__flow_dict."""

    class TestModel(pl.DeterministicModel):
        def training_step(self, batch, batch_idx):
            acc = self.step(batch, batch_idx)
            acc = acc + batch_idx

            self.training_step_called = True
            self.out = {"loss": acc, "random_things": [1, "a", pl.tensor(2)], "batch_idx": batch_idx}
            return self.out

        def on_train_batch_end(self, tr_step_output, *_):
            assert self.count_num_graphs(tr_step_output) == 0

        def backward(self, loss):
            return pl.LightningModule.backward(self, loss)

    model = TestModel()
    model.val_dataloader = None
    _fit(pl, model, tmp_path)

    # make sure correct steps were called
    assert model.training_step_called
