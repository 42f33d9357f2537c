"""The training logic around the seed network, as a LightningModule."""

from __future__ import annotations

import warnings
from functools import partial

import lightning as L
import torch
import torchmetrics
from torch import nn

from cnn import schema
from cnn.metrics import report_test_epoch, write_epoch_end
from cnn.net_contract import check_output, check_parameters
from cnn.pt.checkpoint import check_checkpoint_fits
from cnn.pt.lightning_internals import logging_as, train_step_is_written
from cnn.pt.model import SeedCNN
from cnn.schedule import learning_rate_at
from cnn.weights import initial_weights


def training_loss(log_probs: torch.Tensor, labels: torch.Tensor,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """The mean training loss of a batch of log-probabilities: cross-entropy with
    ``label_smoothing``, which at 0 is ``nll_loss``."""
    if not label_smoothing:
        return nn.functional.nll_loss(log_probs, labels)
    # cross_entropy applies log_softmax, the identity on log-probabilities
    return nn.functional.cross_entropy(log_probs, labels, label_smoothing=label_smoothing)


class Classifier(L.LightningModule):
    """Trains ``SeedCNN`` with Adam and negative log-likelihood (label-smoothed if asked); logs
    ``cnn.schema`` tags.

    Batches are ``(uint8 images NCHW, int64 labels)``; ``forward`` scales to [0, 1] and
    normalises with the train split's per-channel statistics, held as buffers so a checkpoint
    alone can classify new images. ``setup`` takes them from the DataModule when it has loaded
    a dataset; restoring a checkpoint (which Lightning does after ``setup``) overrides them.

    Logged: ``train/loss`` on every step Lightning writes to the logger (each
    ``log_every_n_steps``-th, and any step after ``trainer.should_stop`` is set, as Lightning
    decides; the dropout-on objective being minimised). It is ``self.log``ged on those steps
    only, and as a host copy: a per-step ``self.log`` costs Lightning's bookkeeping every step,
    and a device tensor in the progress-bar dict is read back with ``.item()`` after every
    batch, which makes the host wait for the GPU each step (docs/performance.md has the cost
    per step). The TensorBoard events
    (tags, steps, values) are the ones a per-step ``self.log`` gives; between written steps,
    the progress bar and ``trainer.callback_metrics`` hold the last written value
    (``--trainer.log_every_n_steps 1`` makes it every step again);
    ``train/acc`` once an epoch (unless ``train_accuracy`` is false), in eval mode (dropout off)
    over a fixed sample of the train split as large as the validation split; ``val/loss``,
    ``val/acc``, ``test/loss``, ``test/acc`` per epoch, averaged over images (not batches). ``test`` also logs per-class
    accuracy (``test/acc_class/<name>``) and the confusion matrix as an image, and saves it as
    a PNG beside the checkpoint tested (``cnn.metrics``).
    Under DDP (``--trainer.strategy ddp --trainer.devices N``) each rank sees its own shard and
    every epoch value is over all ranks' images: losses with ``sync_dist``, accuracies by
    torchmetrics' own sync, the confusion matrix from ``all_gather``ed predictions (the PNG and
    the logs written by rank zero). Shards are padded to equal size by wrap-around, as with
    ``DistributedSampler``: up to N - 1 images may count twice in a full evaluation.
    Hooks used, in Lightning's order: ``setup``, ``training_step``, ``on_train_batch_end``,
    ``validation_step``, ``on_train_epoch_end``, ``on_save_checkpoint``, ``on_test_epoch_start``,
    ``test_step``, ``on_test_epoch_end``, ``predict_step``.
    """

    # What it logs only once training is under way, which a misspelt `monitor` is checked against (cnn.monitors).
    training_tags = schema.TRAINING_TAGS

    def __init__(self, lr: float = 1e-3, weight_decay: float = 0.0, lr_schedule: str = "cosine",
                 betas: tuple[float, float] = (0.9, 0.999),
                 dropout: float = schema.DEFAULT_DROPOUT, in_channels: int = 1,
                 image_size: int = 28, num_classes: int = 10,
                 classes: tuple[str, ...] | None = None, seed: int = 0,
                 conv_backward_chunk: int | None = None, channels_last: bool = True,
                 compile: bool = False, train_accuracy: bool = True, label_smoothing: float = 0.0,
                 net: nn.Module | None = None, init_from: str | None = None):
        """
        Args:
            lr: Adam learning rate.
            weight_decay: Adam L2 penalty.
            lr_schedule: ``cosine`` (warm-up, then cosine decay to zero at the last step),
                ``onecycle`` (torch's ``OneCycleLR``) or ``constant``; see ``cnn.schedule``.
            betas: Adam's decay rates of the gradient's running mean and square.
            dropout: dropout probability after each linear layer.
            in_channels: image channels (linked from the data).
            image_size: image height and width in pixels (linked from the data).
            num_classes: number of classes (linked from the data).
            classes: class names, for predictions (linked from the data).
            seed: seed of the initial weights (linked from ``seed_everything``).
            conv_backward_chunk: MLX only; torch's backward has no such limit; ignored by torch
                (accepted and saved in ``hparams`` so one YAML drives both frameworks).
            channels_last: hold the network's 4-d weights and each input batch in
                ``torch.channels_last`` memory format (NHWC strides; same shapes, names and
                values), the layout cuDNN's tensor-core convolutions want (its measured effect:
                docs/performance.md, "Speed switches").
                Checkpoints hold contiguous tensors either way, so they load into both
                settings. MLX is always channels-last and ignores it.
            compile: ``torch.compile`` the network (``nn.Module.compile``: the compiled
                callable is kept outside the registered submodules, so ``state_dict`` keys and
                checkpoints are unchanged, no ``_orig_mod.`` prefix). The first steps of each
                mode (train, eval) and batch shape are slow while it compiles. MLX ignores it
                (its Trainer compiles the whole step itself: ``--trainer.compile``).
            train_accuracy: measure ``train/acc`` at each epoch's end (an extra pass over as
                many train images as validation has); ``false`` skips that pass and the tag.
            label_smoothing: the training loss's label smoothing, in [0, 1): cross-entropy
                against ``1 - label_smoothing`` on the label plus ``label_smoothing`` spread
                evenly over all classes; 0 is plain negative log-likelihood. Validation and
                test losses stay plain negative log-likelihood.
            net: the network to train instead of a fresh ``SeedCNN``: a class path and its
                init args, e.g. the project's ``cnn.pt.resnet.ResNet`` or your own
                ``torch.nn.Module``, which takes normalised float32 images ``(N, C, H, W)`` and
                returns log-probabilities ``(N, num_classes)``; its arguments are its own
                (not linked from the data).
            init_from: a checkpoint (either framework's, or a converted file) whose network
                weights a new ``fit`` starts from, with a fresh optimizer (``start_from``); a
                resumed ``fit`` (``--ckpt_path``) and evaluations leave it unread.
        """
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net or SeedCNN(in_channels, image_size, num_classes, dropout, seed)
        self._net_checked = False
        self._channels_last = bool(channels_last)
        if self._channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:
            self.net.compile()
        self._train_loss: torch.Tensor | None = None  # this step's, until it is logged
        self._train_acc_epoch: int | None = None  # the epoch whose train/acc was measured last
        self.register_buffer("mean", torch.zeros(in_channels))
        self.register_buffer("std", torch.ones(in_channels))
        self.train_acc = torchmetrics.Accuracy("multiclass", num_classes=num_classes)
        self.val_acc = torchmetrics.Accuracy("multiclass", num_classes=num_classes)
        self.test_acc = torchmetrics.Accuracy("multiclass", num_classes=num_classes)

    def start_from(self, path: str) -> str | None:
        """Load the network weights of the checkpoint at ``path`` (``cnn.weights.initial_weights``);
        the ``note:`` text when its last layer was left as initialised."""
        own = {k: tuple(v.shape) for k, v in self.net.state_dict().items()}
        arrays, note = initial_weights(path, own, self.hparams.num_classes, "torch")
        self.net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=False)
        return note

    def setup(self, stage: str) -> None:
        if self.trainer.world_size > 1:
            # DDP on conv1's (20, 1, 5, 5) weight: its gradient's stride differs from the bucket's
            # only along the size-1 axis, which changes nothing; torch warns anyway. With
            # channels_last every conv weight's gradient is NHWC-strided and DDP copies it into
            # its flat bucket: the same values, one copy more.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        if stage == "fit":
            check_parameters(sum(p.numel() for p in self.net.parameters() if p.requires_grad), self.net)
        datamodule = getattr(self.trainer, "datamodule", None)
        # a user's DataModule (--data CLASS) may have no statistics: images stay on [0, 1]
        if getattr(datamodule, "norm", None) is not None:
            self.mean.copy_(torch.tensor(datamodule.norm.mean))
            self.std.copy_(torch.tensor(datamodule.norm.std))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self._channels_last:  # still uint8: the cheapest place to change the layout
            images = images.contiguous(memory_format=torch.channels_last)
        x = images.float().div_(255.0)  # both keep the memory format
        x = (x - self.mean[:, None, None]) / self.std[:, None, None]
        out = self.net(x)
        if not self._net_checked:  # a user's network: its contract, once, before any loss
            check_output(out, len(images), self.hparams.num_classes, self.net)
            self._net_checked = True
        return out

    def training_step(self, batch, batch_idx):
        images, labels = batch
        loss = training_loss(self(images), labels, self.hparams.label_smoothing)
        self._train_loss = loss.detach()
        self._log_train_loss()
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        # Callbacks' on_train_batch_end ran just before (Lightning's order): one of them may have
        # set trainer.should_stop (Timer, a user's callback), and Lightning then writes this
        # step too.
        self._log_train_loss()
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._measure_train_accuracy()

    def _train_step_is_written(self) -> bool:
        """Whether Lightning writes this step's metrics to the loggers (with no Trainer: yes)."""
        return self._trainer is None or train_step_is_written(self._trainer,
                                                              self.automatic_optimization)

    def _log_train_loss(self) -> None:
        if self._train_loss is None or not self._train_step_is_written():
            return
        loss, self._train_loss = self._train_loss, None
        # A host copy (on a GPU, one wait per written step): Lightning turns progress-bar values
        # into numbers after every batch, written or not, and for a device tensor that waits
        # for the device. Same float32 value, so the same event.
        with logging_as(self, "training_step"):  # from on_train_batch_end too: one result entry
            self.log(schema.TRAIN_LOSS, loss.cpu(), prog_bar=True)

    def on_train_epoch_end(self) -> None:
        if self._train_acc_epoch != self.current_epoch:  # an epoch cut short (max_steps)
            self._measure_train_accuracy()

    def _measure_train_accuracy(self) -> None:
        # Train accuracy with dropout off, on the same images every epoch (our DataModule's
        # sample; a user's DataModule without one gets no train/acc). Measured after the
        # epoch's last step, before the validation and checkpoints of its end, and written at
        # once (cnn.metrics.write_epoch_end): a run resumed from such a checkpoint goes on with
        # the next epoch. self.log keeps it for the progress bar and callback_metrics.
        probe = getattr(self.trainer.datamodule, "train_probe_dataloader", None)
        if not self.hparams.train_accuracy or probe is None:
            return
        self._train_acc_epoch = self.current_epoch
        was_training = self.training
        self.eval()
        with torch.no_grad():
            for images, labels in probe():
                images, labels = images.to(self.device), labels.to(self.device)
                self.train_acc.update(self(images), labels)
        self.train(was_training)
        # compute() gathers every rank's counts under DDP; sync_dist averages equal values
        accuracy = self.train_acc.compute()
        self.train_acc.reset()
        self.log(schema.TRAIN_ACC, accuracy, prog_bar=True, logger=False, on_step=False, on_epoch=True,
                 sync_dist=True)
        write_epoch_end(self, {schema.TRAIN_ACC: accuracy.item()})

    def _evaluate(self, batch, loss_tag: str, acc_tag: str, metric) -> torch.Tensor:
        images, labels = batch
        log_probs = self(images)
        loss = nn.functional.nll_loss(log_probs, labels)
        metric.update(log_probs, labels)
        # DDP: the epoch mean over every rank's images (sum of loss x batch / sum of batches)
        self.log(loss_tag, loss, prog_bar=True, batch_size=len(labels), sync_dist=True)
        self.log(acc_tag, metric, prog_bar=True)  # a torchmetrics object syncs itself
        return log_probs

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, schema.VAL_LOSS, schema.VAL_ACC, self.val_acc)

    def on_test_epoch_start(self) -> None:
        self._test_outcomes: list[tuple[torch.Tensor, torch.Tensor]] = []  # (labels, predicted)

    def test_step(self, batch, batch_idx):
        log_probs = self._evaluate(batch, schema.TEST_LOSS, schema.TEST_ACC, self.test_acc)
        self._test_outcomes.append((batch[1], log_probs.argmax(1)))

    def on_test_epoch_end(self) -> None:
        # DDP: every rank's share of the test set, gathered to (world_size, n) on each rank
        labels, predictions = (self.all_gather(torch.cat(part)).reshape(-1).cpu().numpy()
                               for part in zip(*self._test_outcomes))
        report_test_epoch(self, labels, predictions)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Before the state dict is loaded: another dataset's checkpoint is one line, not a
        # tensor-size traceback.
        check_checkpoint_fits(checkpoint, self)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # channels_last weights are strided views; a checkpoint holds them contiguous (the
        # canonical layout), so converters, safetensors and numpy read them as they always did.
        state = checkpoint.get("state_dict") or {}
        for key in list(state):
            if isinstance(state[key], torch.Tensor) and not state[key].is_contiguous():
                state[key] = state[key].contiguous()

    def predict_step(self, batch, batch_idx):
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.exp(self(images))

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr,
                                     betas=tuple(self.hparams.betas),
                                     weight_decay=self.hparams.weight_decay)
        total = self.trainer.estimated_stepping_batches
        factor = partial(learning_rate_at, total_steps=total, base_lr=1.0,
                         schedule=self.hparams.lr_schedule)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
