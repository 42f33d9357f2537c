"""A Lightning user's own model on the MLX mirror: the same toy scripts run through the installed Lightning and
through ``cnn.mx.lightning``, and what they observe is compared (values seen inside ``training_step``, manual
optimization, checkpoint contents after a round trip, the data a Lightning user brings)."""

from __future__ import annotations

import warnings

import cnn.mx  # noqa: F401  (optimised BLAS before mlx)
from cnn.mx.lightning.callbacks import Callback as MxCallback
from cnn.mx.lightning.core.module import LightningModule as MxLightningModule
from cnn.mx.lightning.trainer import Trainer as MxTrainer

import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as moptim
import numpy as np
import pytest
from mlx.utils import tree_flatten

QUIET = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
             num_sanity_val_steps=0, accelerator="cpu")


def _arrays(batches: int, seed: int = 0, size: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size, 3)).astype(np.float32), rng.standard_normal((size, 1)).astype(np.float32))
            for _ in range(batches)]


class Batches:
    """A re-iterable loader of batches (a plain list would be taken by Lightning as several dataloaders)."""

    def __init__(self, batches):
        self.batches = list(batches)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def _mx_batches(batches: int, seed: int = 0) -> list[tuple[mx.array, mx.array]]:
    return [(mx.array(x), mx.array(y)) for x, y in _arrays(batches, seed)]


class _SeenCounters:
    """A callback recording, after each training batch, what ``training_step`` logged as epoch and step."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        metrics = trainer.callback_metrics
        self.seen.append((int(metrics["seen_epoch"]), int(metrics["seen_step"])))


class MxCounterToy(MxLightningModule):
    def __init__(self):
        super().__init__()
        self.layer = mnn.Linear(3, 1)
        object.__setattr__(self, "body_runs", 0)

    def training_step(self, batch, batch_idx):
        object.__setattr__(self, "body_runs", self.body_runs + 1)
        self.log("seen_epoch", self.current_epoch, on_step=True, on_epoch=False)
        self.log("seen_step", self.global_step, on_step=True, on_epoch=False)
        return ((self.layer(batch[0]) - batch[1]) ** 2).mean()

    def configure_optimizers(self):
        return moptim.SGD(learning_rate=0.1)


def _lightning_counters(tmp_path) -> list[tuple[int, int]]:
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    class TorchCounterToy(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            self.log("seen_epoch", float(self.current_epoch), on_step=True, on_epoch=False)
            self.log("seen_step", float(self.global_step), on_step=True, on_epoch=False)
            return ((self.layer(batch[0]) - batch[1]) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    recorder = type("Recorder", (_SeenCounters, pl.Callback), {})()
    trainer = pl.Trainer(max_epochs=2, default_root_dir=str(tmp_path), callbacks=[recorder],
                         **{**QUIET, "enable_checkpointing": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(TorchCounterToy(), Batches(tuple(torch.from_numpy(a) for a in b) for b in _arrays(3)))
    return recorder.seen


@pytest.fixture(scope="module")
def lightning_counters(tmp_path_factory):
    return _lightning_counters(tmp_path_factory.mktemp("pl"))


def test_training_step_body_runs_every_step_by_default_and_sees_lightnings_counters(lightning_counters, tmp_path):
    recorder = type("Recorder", (_SeenCounters, MxCallback), {})()
    model = MxCounterToy()
    MxTrainer(max_epochs=2, default_root_dir=str(tmp_path), callbacks=[recorder], **QUIET).fit(model, _mx_batches(3))
    assert lightning_counters == [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5)]
    assert recorder.seen == lightning_counters
    assert model.body_runs == 6


def test_compiled_training_step_receives_each_steps_epoch_and_global_step(lightning_counters, tmp_path):
    recorder = type("Recorder", (_SeenCounters, MxCallback), {})()
    model = MxCounterToy()
    trainer = MxTrainer(max_epochs=2, default_root_dir=str(tmp_path), callbacks=[recorder], compile=True, **QUIET)
    trainer.fit(model, _mx_batches(3))
    assert trainer.compiling  # no fallback to eager: the counters came in as inputs of the compiled step
    assert model.body_runs == 1  # traced once, as documented
    assert recorder.seen == lightning_counters


# -- manual optimization and several optimizers ---------------------------------------------------------------
def _regression_loss(layer, x, y):
    return ((layer(x) - y) ** 2).mean()


class MxManualToy(MxLightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.layer = mnn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss, grads = mnn.value_and_grad(self.layer, _regression_loss)(self.layer, *batch)
        opt.update(self.layer, grads)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return moptim.Adam(learning_rate=0.05)


def test_manual_optimization_weights_equal_a_hand_written_mlx_loop(tmp_path):
    mx.random.seed(3)
    model = MxManualToy()
    reference = mnn.Linear(3, 1)
    reference.update(model.layer.parameters())
    batches = _mx_batches(4)
    trainer = MxTrainer(max_epochs=2, default_root_dir=str(tmp_path), **QUIET)
    trainer.fit(model, batches)

    opt = moptim.Adam(learning_rate=0.05)
    step = mnn.value_and_grad(reference, _regression_loss)
    for _ in range(2):
        for x, y in batches:
            _, grads = step(reference, x, y)
            opt.update(reference, grads)
            mx.eval(reference.parameters())
    for (name, ours), (_, theirs) in zip(sorted(model.layer.parameters().items()),
                                         sorted(reference.parameters().items())):
        np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-6, atol=1e-7, err_msg=name)
    assert trainer.global_step == 8
    assert "train_loss" in trainer.callback_metrics


class MxGanToy(MxLightningModule):
    """Two networks, two optimizers, each stepped once per batch (a GAN's shape without its maths)."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.generator = mnn.Linear(3, 3)
        self.discriminator = mnn.Linear(3, 1)
        object.__setattr__(self, "steps_seen", [])

    def training_step(self, batch, batch_idx):
        x, _ = batch
        opt_g, opt_d = self.optimizers()
        self.steps_seen.append(self.global_step)

        def d_loss(disc, fake, real):
            return (disc(fake) ** 2).mean() + ((disc(real) - 1) ** 2).mean()

        def g_loss(gen, disc, z):
            return ((disc(gen(z)) - 1) ** 2).mean()

        fake = mx.stop_gradient(self.generator(x))
        loss_d, grads_d = mnn.value_and_grad(self.discriminator, d_loss)(self.discriminator, fake, x)
        opt_d.update(self.discriminator, grads_d)
        loss_g, grads_g = mnn.value_and_grad(self.generator, g_loss)(self.generator, self.discriminator, x)
        opt_g.update(self.generator, grads_g)
        self.log_dict({"g_loss": loss_g, "d_loss": loss_d})

    def configure_optimizers(self):
        return [moptim.Adam(learning_rate=1e-2), moptim.SGD(learning_rate=1e-2)]


def _lightning_gan_steps(tmp_path) -> list[int]:
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    class TorchGanToy(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.generator, self.discriminator = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
            self.steps_seen = []

        def training_step(self, batch, batch_idx):
            x, _ = batch
            opt_g, opt_d = self.optimizers()
            self.steps_seen.append(self.global_step)
            fake = self.generator(x).detach()
            loss_d = (self.discriminator(fake) ** 2).mean() + ((self.discriminator(x) - 1) ** 2).mean()
            opt_d.zero_grad()
            self.manual_backward(loss_d)
            opt_d.step()
            loss_g = ((self.discriminator(self.generator(x)) - 1) ** 2).mean()
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()

        def configure_optimizers(self):
            return [torch.optim.Adam(self.generator.parameters(), lr=1e-2),
                    torch.optim.SGD(self.discriminator.parameters(), lr=1e-2)]

    model = TorchGanToy()
    trainer = pl.Trainer(max_epochs=2, default_root_dir=str(tmp_path), **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, Batches(tuple(torch.from_numpy(a) for a in b) for b in _arrays(3)))
    return model.steps_seen + [trainer.global_step]


def test_two_optimizer_gan_trains_and_counts_global_step_as_lightning(tmp_path):
    model = MxGanToy()
    generator_before = np.array(model.generator.weight)
    trainer = MxTrainer(max_epochs=2, default_root_dir=str(tmp_path), **QUIET)
    trainer.fit(model, _mx_batches(3))
    assert model.steps_seen + [trainer.global_step] == _lightning_gan_steps(tmp_path / "pl")
    assert trainer.global_step == 12  # two optimizer steps per batch, as Lightning counts them
    assert not np.allclose(np.array(model.generator.weight), generator_before)
    assert {"g_loss", "d_loss"} <= set(trainer.callback_metrics)


def test_two_optimizer_checkpoint_resumes_both_optimizers_and_global_step(tmp_path):
    from cnn.mx.lightning.callbacks import ModelCheckpoint

    flags = {**QUIET, "enable_checkpointing": True}
    first = MxTrainer(max_epochs=1, default_root_dir=str(tmp_path), callbacks=[
        ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)], **flags)
    first.fit(MxGanToy(), _mx_batches(3))
    adam_step = int(first.optimizers[0].step.item())
    resumed_model = MxGanToy()
    resumed = MxTrainer(max_epochs=2, default_root_dir=str(tmp_path), callbacks=[
        ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)], **flags)
    resumed.fit(resumed_model, _mx_batches(3), ckpt_path=str(tmp_path / "ckpt" / "last.safetensors"))
    assert adam_step == 3
    assert resumed_model.steps_seen == [6, 8, 10]
    assert int(resumed.optimizers[0].step.item()) == 6  # Adam's moments and count came back, then 3 more


def _two_optimizer_error(trainer_cls, module) -> str:
    with pytest.raises(RuntimeError) as error:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer_cls(max_epochs=1, **QUIET).fit(module, _loader_for(module))
    return str(error.value)


def _loader_for(module):
    if isinstance(module, MxLightningModule):
        return _mx_batches(2)
    import torch

    return Batches(tuple(torch.from_numpy(a) for a in b) for b in _arrays(2))


def test_several_optimizers_under_automatic_optimization_are_refused_as_lightning_refuses_them():
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    class TorchTwo(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            return ((self.a(batch[0]) + self.b(batch[0]) - batch[1]) ** 2).mean()

        def configure_optimizers(self):
            return [torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters(), lr=0.1)]

    class MxTwo(MxLightningModule):
        def __init__(self):
            super().__init__()
            self.a, self.b = mnn.Linear(3, 1), mnn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            return ((self.a(batch[0]) + self.b(batch[0]) - batch[1]) ** 2).mean()

        def configure_optimizers(self):
            return [moptim.SGD(learning_rate=0.1), moptim.SGD(learning_rate=0.1)]

    ours = _two_optimizer_error(MxTrainer, MxTwo())
    assert ours == _two_optimizer_error(pl.Trainer, TorchTwo())
    assert "\n" not in ours


# -- the backward and optimizer hooks under manual optimization ------------------------------------------------
class _StepObserver:
    """A gradient monitor as a Lightning user writes one: the loss each backward starts from, and per optimizer
    step the optimizer's class and the norm of the gradients it is about to apply (``grad_norm`` reads them)."""

    def __init__(self, calls, grad_norm) -> None:
        self.calls, self.grad_norm = calls, grad_norm

    def on_before_backward(self, trainer, pl_module, loss):
        self.calls.append(("observer", "loss", float(loss)))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.calls.append(("observer", type(optimizer).__name__, self.grad_norm(trainer, optimizer)))


def _manual_hook_recorders(base, calls, grad_norm):
    from tests.mx.lightning.test_mx_hook_order import _callback_class

    observer = type("Observer", (_StepObserver, base), {})(calls, grad_norm)
    return [_callback_class(base)(calls), observer]


def _torch_grad_norm(trainer, optimizer):
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    return float(sum((g ** 2).sum() for g in grads) ** 0.5)


def _mx_grad_norm(trainer, optimizer):
    return float(sum((g ** 2).sum() for _, g in tree_flatten(trainer.gradients)) ** 0.5)


def _lightning_manual_run(tmp_path, initial):
    """Two layers, two optimizers (Adam and SGD), each stepped once a batch as Lightning's docs write it; returns
    the recorded calls and the weights after 2 epochs of 3 batches."""
    import lightning.pytorch as pl
    import torch

    from tests.mx.lightning.test_mx_hook_order import MODULE_MIXIN

    class TorchManualToy(MODULE_MIXIN, pl.LightningModule):
        def __init__(self, calls):
            super().__init__()
            object.__setattr__(self, "calls", calls)
            self.automatic_optimization = False
            self.a, self.b = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
            self.load_state_dict({k: torch.from_numpy(v) for k, v in initial.items()})

        def training_step(self, batch, batch_idx):
            x, y = batch
            opt_a, opt_b = self.optimizers()
            loss_a = ((self.a(x) - y) ** 2).mean()
            opt_a.zero_grad()
            self.manual_backward(loss_a)
            opt_a.step()
            self.calls.append(("step", "global_step", self.global_step))
            loss_b = ((self.b(x) + self.a(x).detach() - y) ** 2).mean()
            opt_b.zero_grad()
            self.manual_backward(loss_b)
            opt_b.step()
            self.calls.append(("step", "global_step", self.global_step))

        def configure_optimizers(self):
            self.calls.append(("module", "configure_optimizers", None))
            return [torch.optim.Adam(self.a.parameters(), lr=0.05), torch.optim.SGD(self.b.parameters(), lr=0.1)]

    calls = []
    model = TorchManualToy(calls)
    trainer = pl.Trainer(max_epochs=2, default_root_dir=str(tmp_path),
                         callbacks=_manual_hook_recorders(pl.Callback, calls, _torch_grad_norm), **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, Batches(tuple(torch.from_numpy(a) for a in b) for b in _arrays(3)))
    return calls, {k: v.detach().numpy() for k, v in model.state_dict().items()}


def _mirror_manual_run(tmp_path, initial):
    """The same toy on the mirror, written with ``manual_backward(loss_fn, ...)`` and ``opt.update``."""
    from tests.mx.lightning.test_mx_hook_order import MODULE_MIXIN

    def loss_fn(layer, x, y, offset):
        return ((layer(x) + offset - y) ** 2).mean()

    class MxManualHooksToy(MODULE_MIXIN, MxLightningModule):
        def __init__(self, calls):
            super().__init__()
            object.__setattr__(self, "calls", calls)
            self.automatic_optimization = False
            self.a, self.b = mnn.Linear(3, 1), mnn.Linear(3, 1)
            self.load_weights([(k, mx.array(v)) for k, v in initial.items()])

        def training_step(self, batch, batch_idx):
            x, y = batch
            opt_a, opt_b = self.optimizers()
            opt_a.zero_grad()
            _, grads_a = self.manual_backward(loss_fn, self.a, x, y, 0.0, module=self.a)
            opt_a.update(self.a, grads_a)
            self.calls.append(("step", "global_step", self.global_step))
            opt_b.zero_grad()
            _, grads_b = self.manual_backward(loss_fn, self.b, x, y, mx.stop_gradient(self.a(x)), module=self.b)
            opt_b.update(self.b, grads_b)
            self.calls.append(("step", "global_step", self.global_step))

        def configure_optimizers(self):
            self.calls.append(("module", "configure_optimizers", None))
            return [moptim.Adam(learning_rate=0.05, bias_correction=True), moptim.SGD(learning_rate=0.1)]

    calls = []
    model = MxManualHooksToy(calls)
    trainer = MxTrainer(max_epochs=2, default_root_dir=str(tmp_path),
                        callbacks=_manual_hook_recorders(MxCallback, calls, _mx_grad_norm), **QUIET)
    trainer.fit(model, _mx_batches(3))
    return calls, {k: np.array(v) for k, v in tree_flatten(model.parameters())}


def test_manual_optimization_calls_lightnings_backward_and_optimizer_hooks_in_its_order_and_trains_alike(tmp_path):
    from tests.mx.lightning.test_mx_hook_order import _first_difference

    rng = np.random.default_rng(5)
    initial = {f"{layer}.{name}": rng.standard_normal(shape).astype(np.float32)
               for layer in "ab" for name, shape in (("weight", (1, 3)), ("bias", (1,)))}
    theirs, their_weights = _lightning_manual_run(tmp_path / "pl", initial)
    ours, our_weights = _mirror_manual_run(tmp_path / "mx", initial)
    hooks = [c[1] for c in theirs]
    assert hooks.count("on_before_backward") == 2 * 12  # callback and module, two backwards a batch, six batches
    assert "on_before_zero_grad" not in hooks  # Lightning's manual opt.zero_grad() calls no hook
    assert ("step", "global_step", 12) in theirs and hooks.count("SGD") == 6

    def order(calls):  # the observed numbers left out, compared below with float32's tolerance
        return [c if isinstance(c[2], (int, str, type(None))) else c[:2] for c in calls]

    def observed(calls):
        return np.array([c[2] for c in calls if isinstance(c[2], float)])

    assert order(ours) == order(theirs), _first_difference(order(theirs), order(ours))
    assert observed(theirs).min() > 0  # losses and gradient norms seen by the callback
    np.testing.assert_allclose(observed(ours), observed(theirs), rtol=1e-4)
    assert set(our_weights) == set(their_weights)
    for name, weight in their_weights.items():
        assert np.abs(weight - initial[name]).max() > 0.01, name  # 12 steps moved every weight
        np.testing.assert_allclose(our_weights[name], weight, rtol=1e-5, atol=1e-5, err_msg=name)


def test_optimizers_gives_the_same_wrappers_each_call_and_they_are_the_mlx_optimizers(tmp_path):
    seen = []

    class Probe(MxManualToy):
        def training_step(self, batch, batch_idx):
            seen.append((self.optimizers(), self.optimizers(), self.optimizers(use_pl_optimizer=False)))
            return super().training_step(batch, batch_idx)

    trainer = MxTrainer(max_epochs=1, default_root_dir=str(tmp_path), **QUIET)
    trainer.fit(Probe(), _mx_batches(2))
    (first, again, raw), (second, _, _) = seen
    assert first is again is second
    assert raw is trainer.optimizers[0] and first.optimizer is raw
    assert isinstance(first, moptim.Adam) and type(first).__name__ == "LightningAdam"  # Lightning's naming
    assert int(first.step.item()) == int(raw.step.item()) == 2
    first.learning_rate = 0.01  # reaches the wrapped optimizer
    assert raw.learning_rate.item() == pytest.approx(0.01)


def _manual_backward_refusal(trainer_cls, module) -> str:
    with pytest.raises(Exception) as error:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer_cls(max_epochs=1, **QUIET).fit(module, _loader_for(module))
    return str(error.value)


def test_manual_backward_under_automatic_optimization_is_refused_as_lightning_refuses_it():
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    class TorchAutomatic(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            self.manual_backward(_regression_loss(self.layer, *batch))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class MxAutomatic(MxLightningModule):
        def __init__(self):
            super().__init__()
            self.layer = mnn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            return self.manual_backward(_regression_loss, self.layer, *batch, module=self.layer)[0]

        def configure_optimizers(self):
            return moptim.SGD(learning_rate=0.1)

    ours = _manual_backward_refusal(MxTrainer, MxAutomatic())
    assert ours == _manual_backward_refusal(pl.Trainer, TorchAutomatic())
    assert "automatic_optimization" in ours and "\n" not in ours


# -- checkpoints a Lightning user can rely on -----------------------------------------------------------------
def _extras():
    """What a user puts into a checkpoint from ``on_save_checkpoint`` (arrays of two dtypes, float64 included)."""
    return {"count": 3, "ratio": 0.5, "flag": True, "name": "x", "nothing": None, "never": float("inf"),
            "pair": (1, 2.0), "items": [1, (2, "3")], "nested": {"k": (4,), "empty": {}}, "by_step": {1: 0.5, 7: 0.25},
            "table": np.arange(6.0).reshape(2, 3), "mask": np.array([True, False])}


def _assert_same(ours, theirs, where="checkpoint"):
    """Equal values of the same types, all the way down (arrays: same kind, dtype and contents)."""
    if isinstance(theirs, np.ndarray) or isinstance(theirs, mx.array):
        assert type(ours) is type(theirs), where
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        np.testing.assert_array_equal(np.array(ours), np.array(theirs), err_msg=where)
        return
    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} != {type(theirs).__name__}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for k in theirs:
            _assert_same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _assert_same(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, where


class MxSavingToy(MxLightningModule):
    def __init__(self, hidden=(4, 2), act=mnn.relu, lr=0.1):
        super().__init__()
        self.save_hyperparameters()
        self.layer = mnn.Linear(3, hidden[0])
        self.head = mnn.Linear(hidden[0], 1)

    def __call__(self, x):
        return self.head(self.hparams.act(self.layer(x)))

    def training_step(self, batch, batch_idx):
        return ((self(batch[0]) - batch[1]) ** 2).mean()

    def configure_optimizers(self):
        return moptim.SGD(learning_rate=self.hparams.lr)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["extras"] = {**_extras(), "weights_copy": self.layer.weight, "float64": mx.array([0.1, 0.2],
                                                                                                  dtype=mx.float64)}


class _StatefulCallback:
    def state_dict(self):
        return {"seen": (1, 2), "scores": np.array([0.5, 0.25], dtype=np.float32), "best": mx.array(0.125)}


def _lightning_extras_round_trip(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    class TorchSavingToy(pl.LightningModule):
        def __init__(self, hidden=(4, 2), lr=0.1):
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            return ((self.layer(batch[0]) - batch[1]) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def on_save_checkpoint(self, checkpoint):
            checkpoint["extras"] = _extras()

    trainer = pl.Trainer(max_epochs=1, default_root_dir=str(tmp_path), **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(TorchSavingToy(), Batches(tuple(torch.from_numpy(a) for a in b) for b in _arrays(2)))
    trainer.save_checkpoint(tmp_path / "pl.ckpt")
    # weights_only, with numpy's array reconstruction allowed: the extras hold numpy arrays
    allowed = [np._core.multiarray._reconstruct, np.ndarray, np.dtype,
               *(getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType"))]
    with torch.serialization.safe_globals(allowed):
        return torch.load(tmp_path / "pl.ckpt", weights_only=True)


@pytest.fixture
def mx_checkpoint(tmp_path):
    model = MxSavingToy()
    callback = type("Stateful", (_StatefulCallback, MxCallback), {})()
    trainer = MxTrainer(max_epochs=1, default_root_dir=str(tmp_path), callbacks=[callback], **QUIET)
    trainer.fit(model, _mx_batches(2))
    path = str(tmp_path / "toy.safetensors")
    trainer.save_checkpoint(path)
    return path, model, callback


def test_checkpoint_extras_come_back_with_the_types_lightning_gives_back(mx_checkpoint, tmp_path):
    from cnn.mx.lightning.plugins.io import SafetensorsCheckpointIO

    path, model, callback = mx_checkpoint
    ours = SafetensorsCheckpointIO().load_checkpoint(path)
    theirs = _lightning_extras_round_trip(tmp_path / "pl")
    _assert_same({k: ours["extras"][k] for k in _extras()}, theirs["extras"])
    _assert_same(ours["extras"]["weights_copy"], model.layer.weight)
    _assert_same(ours["extras"]["float64"], mx.array([0.1, 0.2], dtype=mx.float64))
    _assert_same(ours["callbacks"]["Stateful"], callback.state_dict())
    assert ours["hyper_parameters"]["hidden"] == theirs["hyper_parameters"]["hidden"] == (4, 2)
    assert ours["hyper_parameters"]["act"] == "mlx.nn.layers.activations.relu"


def test_checkpoint_arrays_are_tensors_of_the_file_not_json(mx_checkpoint):
    path, _, _ = mx_checkpoint
    arrays, metadata = mx.load(path, return_metadata=True)
    assert "lightning.types" in metadata
    assert "0.125" not in metadata["lightning"] and "[[0.0, 1.0, 2.0]" not in metadata["lightning"]
    assert sum(k.startswith("extra.") for k in arrays) == 6  # table, mask, weights_copy, float64; 2 of the callback


def test_load_from_checkpoint_rebuilds_the_module_with_its_hparams_weights_and_overrides(mx_checkpoint, capsys):
    path, model, _ = mx_checkpoint
    loaded = MxSavingToy.load_from_checkpoint(path, act=mnn.relu, lr=0.5)
    assert loaded.hparams.hidden == (4, 2) and loaded.hparams.lr == 0.5 and loaded.hparams.act is mnn.relu
    x = mx.ones((2, 3))
    np.testing.assert_array_equal(np.array(loaded(x)), np.array(model(x)))
    with pytest.raises(Exception, match="does not match MxSavingToy"):
        MxSavingToy.load_from_checkpoint(path, act=mnn.relu, hidden=(5, 2))
    # not strict: keys may be missing or extra, never a shape (Lightning's load raises; no layer left random)
    with pytest.raises(RuntimeError, match="does not match MxSavingToy.*size mismatch"):
        MxSavingToy.load_from_checkpoint(path, act=mnn.relu, hidden=(5, 2), strict=False)


def test_save_hyperparameters_records_a_function_by_name_with_one_note(capsys):
    model = MxSavingToy(act=mnn.gelu)
    notes = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(notes) == 1 and "'act'" in notes[0] and "mlx.nn.layers.activations.gelu" in notes[0]
    assert model.hparams.act is mnn.gelu  # the module still uses what it was given
    assert model.hparams_initial["act"] == "mlx.nn.layers.activations.gelu"


def test_an_unstorable_checkpoint_entry_is_refused_at_save_naming_its_key(tmp_path):
    from cnn.errors import CheckpointError

    class Unstorable(MxSavingToy):
        def on_save_checkpoint(self, checkpoint):
            checkpoint["extras"] = {"fine": 1, "handle": open}

    trainer = MxTrainer(max_epochs=1, default_root_dir=str(tmp_path), **QUIET)
    trainer.fit(Unstorable(), _mx_batches(1))
    with pytest.raises(CheckpointError) as error:
        trainer.save_checkpoint(str(tmp_path / "bad.safetensors"))
    assert "checkpoint['extras']['handle']" in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "bad.safetensors").exists()


# -- data as Lightning users bring it -------------------------------------------------------------------------
def _source(kind: str):
    arrays = _arrays(3, seed=5)
    if kind == "mx":
        return Batches((mx.array(x), mx.array(y)) for x, y in arrays)
    if kind == "numpy":
        return Batches(arrays)
    torch = pytest.importorskip("torch")
    if kind == "torch":
        return Batches((torch.from_numpy(x), torch.from_numpy(y)) for x, y in arrays)
    x, y = (torch.from_numpy(np.concatenate(parts)) for parts in zip(*arrays))
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2, shuffle=False)


class MxBatchTypesToy(MxLightningModule):
    def __init__(self):
        super().__init__()
        self.layer = mnn.Linear(3, 1)
        object.__setattr__(self, "batch_types", set())

    def training_step(self, batch, batch_idx):
        self.batch_types.update(type(b).__name__ for b in batch)
        return ((self.layer(batch[0]) - batch[1]) ** 2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", ((self.layer(batch[0]) - batch[1]) ** 2).mean())

    def configure_optimizers(self):
        return moptim.SGD(learning_rate=0.1)


def _weights_after_fit(tmp_path, train, val=None, datamodule=None):
    mx.random.seed(11)
    model = MxBatchTypesToy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converting a batch is no reason to warn
        MxTrainer(max_epochs=2, default_root_dir=str(tmp_path), **QUIET).fit(
            model, train_dataloaders=train, val_dataloaders=val, datamodule=datamodule)
    assert model.batch_types == {"array"}
    return np.array(model.layer.weight)


@pytest.mark.parametrize("kind", ["numpy", "torch", "torch DataLoader"])
def test_numpy_and_torch_batches_train_exactly_as_mx_batches(kind, tmp_path):
    expected = _weights_after_fit(tmp_path / "mx", _source("mx"), _source("mx"))
    np.testing.assert_array_equal(_weights_after_fit(tmp_path / "other", _source(kind), _source(kind)), expected)


def test_a_lightning_datamodule_is_exported_and_drives_fit_and_test(tmp_path):
    from cnn.mx.lightning import LightningDataModule

    class ToyData(LightningDataModule):
        def __init__(self, batch_size: int = 2):
            super().__init__()
            self.save_hyperparameters()
            self.stages = []

        def setup(self, stage):
            self.stages.append(stage)

        def train_dataloader(self):
            return _source("torch DataLoader")

        def val_dataloader(self):
            return _source("numpy")

    data = ToyData()
    weights = _weights_after_fit(tmp_path, None, datamodule=data)
    np.testing.assert_array_equal(weights, _weights_after_fit(tmp_path / "mx", _source("mx"), _source("mx")))
    assert data.stages == ["fit"] and data.hparams.batch_size == 2
    with pytest.raises(ValueError, match="test_dataloader"):
        MxTrainer(**QUIET).test(MxBatchTypesToy(), datamodule=data)
