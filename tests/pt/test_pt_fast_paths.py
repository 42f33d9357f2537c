"""The torch side's speed switches change speed only: channels_last, compile, device-resident
batches and train/loss logged on the steps Lightning writes give the same numbers, checkpoints
and TensorBoard events as before.

Device-resident batches are exercised with ``torch.device("cpu")`` as the "device": the code
path (one copy of the split, the epoch's order copied once, ``index_select`` per batch) is the
one a GPU runs, only the copies' target differs. That a CPU trainer keeps host batches is
checked too.
"""

from __future__ import annotations

import copy

import lightning as L
import numpy as np
import pytest
import torch

from cnn import schema
from cnn.data.datamodule import ResidentBatches
from cnn.data.pipeline import NumpyBatches, PreparedData
from cnn.pt.datamodule import DataModule, DeviceSplit
from cnn.pt.module import Classifier
from cnn.tools.events import read_scalars, run_dirs


@pytest.fixture(scope="module")
def data() -> PreparedData:
    return PreparedData("mnist", val_fraction=0.01, seed=3)


def datamodule(data: PreparedData, batch_size: int = 16, **kwargs) -> DataModule:
    module = DataModule("mnist", batch_size=batch_size, eval_batch_size=50, seed=3, **kwargs)
    module.data = data
    return module


# ---------------------------------------------------------------- channels_last
def batch(n: int = 32, channels: int = 1, size: int = 28, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8))
    return images, torch.from_numpy(rng.integers(0, 10, n).astype(np.int64))


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_channels_last_gives_the_contiguous_networks_losses_and_gradients(channels, size):
    images, labels = batch(channels=channels, size=size)
    grads, losses = [], []
    for channels_last in (False, True):
        model = Classifier(in_channels=channels, image_size=size, dropout=0.0, seed=5,
                           channels_last=channels_last)
        model.mean.fill_(0.2), model.std.fill_(0.3)
        loss = torch.nn.functional.nll_loss(model(images), labels)
        loss.backward()
        losses.append(loss.item())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert model.net.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert not model.net.conv2.weight.is_contiguous()
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    for name, grad in grads[0].items():  # tests/test_parity.py's bar between frameworks
        error = float((grads[1][name] - grad).norm() / grad.norm().clamp_min(1e-12))
        assert error <= 1e-4, name


def test_channels_last_weights_save_contiguous_and_load_into_either_layout(tmp_path):
    from safetensors.torch import save_file

    from cnn.tools.convert import write_mlx_checkpoint, write_torch_weights
    from cnn.weights import read_safetensors, read_weights

    model = Classifier(seed=4)  # channels_last by default
    assert list(model.state_dict()) == list(Classifier(seed=4, channels_last=False).state_dict())
    assert all(a.flags.c_contiguous for a in model.net.numpy_weights().values())
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)
    state = checkpoint["state_dict"]
    assert all(t.is_contiguous() for t in state.values())
    save_file(dict(state), str(tmp_path / "raw.safetensors"))  # refuses non-contiguous tensors
    torch.save(checkpoint, tmp_path / "model.ckpt")
    for channels_last in (True, False):
        other = Classifier(seed=9, channels_last=channels_last)
        other.load_state_dict(torch.load(tmp_path / "model.ckpt", weights_only=True)["state_dict"])
        for name, value in model.state_dict().items():
            torch.testing.assert_close(other.state_dict()[name], value, rtol=0, atol=0)
        assert other.net.conv2.weight.is_contiguous(memory_format=torch.channels_last) \
            == channels_last
    weights = read_weights(str(tmp_path / "model.ckpt"))
    write_torch_weights(weights, str(tmp_path / "torch.safetensors"))
    write_mlx_checkpoint(weights, str(tmp_path / "mlx.safetensors"))
    # read_safetensors, not read_weights: this file's header length is 0x680, whose first byte
    # sniff() takes for pickle's 0x80 (a bug of sniff, reported, not ours to fix here)
    np.testing.assert_array_equal(read_safetensors(str(tmp_path / "torch.safetensors"))
                                  .params["conv2.weight"], state["net.conv2.weight"].numpy())


# ---------------------------------------------------------------- compile
@pytest.mark.slow  # compiling forward and backward takes 40-60 s on 2 cores
def test_compiled_network_trains_and_keeps_the_checkpoint_keys(data, tmp_path):
    torch._dynamo.reset()
    model = Classifier(seed=1, compile=True)
    reference = Classifier(seed=1)
    trainer = L.Trainer(accelerator="cpu", max_steps=2, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=datamodule(data))
    assert model.net._compiled_call_impl is not None  # ran compiled, not eager
    trainer.save_checkpoint(tmp_path / "compiled.ckpt")
    saved = torch.load(tmp_path / "compiled.ckpt", weights_only=True)["state_dict"]
    assert list(saved) == list(reference.state_dict())
    assert not any("_orig_mod" in key for key in saved)
    moved = [k for k in saved if k.startswith("net.") and not torch.equal(
        saved[k], reference.state_dict()[k])]
    assert moved, "two Adam steps changed no weight"


# ---------------------------------------------------------------- device-resident batches
def as_numpy(stream):
    return [(images.numpy().copy(), labels.numpy().copy()) for images, labels in stream]


def resident_twin(module: DataModule) -> DataModule:
    """The same DataModule with its splits resident on the CPU "device"."""
    twin = copy.copy(module)
    twin._resident_device, twin._resident_splits = torch.device("cpu"), None
    return twin


def assert_same(got, want):
    assert len(got) == len(want)
    for (gi, gl), (wi, wl) in zip(got, want):
        np.testing.assert_array_equal(gi, wi)
        np.testing.assert_array_equal(gl, wl)


@pytest.mark.parametrize("rank, world_size", [(0, 1), (1, 3)])
def test_resident_batches_are_the_host_batches_in_every_epoch_and_shard(data, rank, world_size):
    host = datamodule(data, batch_size=100)
    host.rank, host.world_size = rank, world_size
    device = resident_twin(host)
    for make in ("train_dataloader", "val_dataloader", "test_dataloader",
                 "train_probe_dataloader"):
        host_stream, device_stream = getattr(host, make)(), getattr(device, make)()
        assert isinstance(device_stream.batches, ResidentBatches)
        assert len(device_stream) == len(host_stream)
        for epoch in (0, 1):
            host_stream.set_epoch(epoch)
            device_stream.set_epoch(epoch)
            assert_same(as_numpy(device_stream), as_numpy(host_stream))
    # one copy per split, reused by every stream and stage
    assert set(device._resident_splits) == {(s, "cpu") for s in ("train", "val", "test")}


def test_a_resident_stream_resumes_mid_epoch_at_the_same_batch(data):
    stream = resident_twin(datamodule(data, batch_size=64)).train_dataloader()
    stream.set_epoch(2)
    whole = as_numpy(stream)
    stream.load_state_dict({"epoch": 2, "batches_done": 5})
    stream.set_epoch(2)
    assert_same(as_numpy(stream), whole[5:])
    assert stream.state_dict() == {"epoch": 2, "batches_done": 0}  # the pass ended


def test_augmented_training_batches_stay_on_the_host_and_evaluation_goes_resident(data):
    device = resident_twin(datamodule(data, augment=True))
    assert isinstance(device.train_dataloader().batches, NumpyBatches)
    assert not isinstance(device.train_dataloader().batches, ResidentBatches)
    assert isinstance(device.val_dataloader().batches, ResidentBatches)


def test_a_cpu_trainer_keeps_host_batches(data, tmp_path):
    module = datamodule(data)
    trainer = L.Trainer(accelerator="cpu", logger=False, default_root_dir=tmp_path)
    module.trainer = trainer
    module.setup("fit")
    assert module._resident_device is None and module.resident("train") is None
    stream = module.train_dataloader()
    assert type(stream.batches) is NumpyBatches
    images, labels = next(iter(stream))
    assert images.device.type == "cpu" and images.dtype == torch.uint8


def test_device_split_holds_nchw_uint8_and_gathers_by_index(data):
    split = DeviceSplit(data.splits["val"], torch.device("cpu"))
    assert split.images.shape[1:] == (1, 28, 28) and split.images.dtype == torch.uint8
    index = split.indices(np.array([5, 0, 3]))
    images, labels = split.take(index)
    np.testing.assert_array_equal(images.numpy(),
                                  data.splits["val"].images[[5, 0, 3]].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(labels.numpy(), data.splits["val"].labels[[5, 0, 3]])


# ---------------------------------------------------------------- train/loss on written steps
class EveryStep(Classifier):
    """The former behaviour: ``self.log`` of train/loss on every step."""

    def _train_step_is_written(self) -> bool:
        return True


class StopAt(L.Callback):
    """Sets ``should_stop`` in on_train_batch_end of one global step (as ``Timer`` does)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            trainer.should_stop = True


def fit_events(cls, data, root, log_every, accumulate=1, stop_at=None, counter=None):
    from lightning.pytorch.loggers import TensorBoardLogger

    L.seed_everything(0, verbose=False)
    model = cls(seed=0)
    if counter is not None:
        real_log = model.log
        model.log = lambda name, *a, **k: (counter.append(name), real_log(name, *a, **k))[1]
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, limit_train_batches=7,
                        limit_val_batches=1, log_every_n_steps=log_every,
                        accumulate_grad_batches=accumulate, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        logger=TensorBoardLogger(root, name="run", default_hp_metric=False),
                        callbacks=[StopAt(stop_at)] if stop_at is not None else [])
    trainer.fit(model, datamodule=datamodule(data))
    (run,) = run_dirs(root)
    return {tag: [(s.step, s.value) for s in series] for tag, series in read_scalars(run).items()}


@pytest.mark.parametrize("log_every, accumulate, stop_at", [
    (3, 1, None),  # the grid crosses the epoch end (7 steps an epoch)
    (2, 2, None),  # accumulation: Lightning writes only on optimizer steps
    (3, 1, 4),  # should_stop set by a callback on a step off the grid: Lightning writes it
])
def test_train_loss_events_equal_those_of_a_log_every_step(data, tmp_path, log_every,
                                                           accumulate, stop_at):
    calls: list[str] = []
    ours = fit_events(Classifier, data, tmp_path / "ours", log_every, accumulate, stop_at,
                      counter=calls)
    before = fit_events(EveryStep, data, tmp_path / "before", log_every, accumulate, stop_at)
    assert ours == before
    steps = [step for step, _ in ours[schema.TRAIN_LOSS]]
    assert steps and calls.count(schema.TRAIN_LOSS) == len(steps)  # logged only when written
    if stop_at is not None:
        assert stop_at % log_every and stop_at - 1 in steps
