"""The training logic around the seed network, as an MLX LightningModule."""

from __future__ import annotations

from functools import partial

from cnn.mx.checkpoint import check_checkpoint_fits
from cnn.mx.lightning.core.module import LightningModule
from cnn.mx.model import SeedCNN

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

from cnn import schema
from cnn.metrics import report_test_epoch, write_epoch_end
from cnn.net_contract import check_output, check_parameters
from cnn.schedule import learning_rate_at
from cnn.weights import initial_weights


def training_loss(log_probs: mx.array, labels: mx.array, label_smoothing: float = 0.0) -> mx.array:
    """The mean training loss of a batch of log-probabilities: cross-entropy with
    ``label_smoothing``, which at 0 is ``nll_loss`` (``cnn.pt.module.training_loss``'s mirror)."""
    if not label_smoothing:
        return nn.losses.nll_loss(log_probs, labels, reduction="mean")
    # cross_entropy takes logits; log-softmax is the identity on log-probabilities
    return nn.losses.cross_entropy(log_probs, labels, label_smoothing=label_smoothing,
                                   reduction="mean")


class Classifier(LightningModule):
    """Trains ``SeedCNN`` with Adam and negative log-likelihood (label-smoothed if asked); logs
    ``cnn.schema`` tags.

    The mirror of ``cnn.pt.module.Classifier``: same arguments, same hooks, same tags.
    Batches are ``(uint8 images NHWC, int64 labels)``; ``__call__`` scales to [0, 1] and
    normalises with the train split's per-channel statistics (``mean``/``std``, saved with
    the weights so a checkpoint alone can classify new images). ``on_load_checkpoint`` refuses
    a checkpoint trained for another dataset or input shape in one line (``ConfigError``).

    Logged: ``train/loss`` every step (the dropout-on objective being minimised);
    ``train/acc`` once an epoch (unless ``train_accuracy`` is false), in eval mode (dropout off)
    over a fixed sample of the train split as large as the validation split; ``val/loss``,
    ``val/acc``, ``test/loss``, ``test/acc`` per epoch, averaged over images (not batches). ``test`` also logs per-class
    accuracy (``test/acc_class/<name>``) and the confusion matrix as an image, and saves it as
    a PNG beside the checkpoint tested (``cnn.metrics``).
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
            conv_backward_chunk: run conv3's backward pass over slices of at most this many
                images, which keeps MLX's CUDA backward convolution clear of its out-of-memory
                on large batches; ``None`` (auto): 2048 on a GPU, off on the CPU; ``0``: off
                (see ``SeedCNN``). Same forward pass; gradients equal up to float32 rounding.
            channels_last: torch only (its memory format); MLX is always channels-last (NHWC).
                Accepted and saved in ``hparams`` so one YAML drives both frameworks.
            compile: torch only (``torch.compile`` of the network); accepted and saved in
                ``hparams``. MLX compiles the whole training step in its Trainer instead
                (``--trainer.compile``, off by default as in Lightning), which this does not change.
            train_accuracy: measure ``train/acc`` at each epoch's end (an extra pass over as
                many train images as validation has); ``false`` skips that pass and the tag.
            label_smoothing: the training loss's label smoothing, in [0, 1): cross-entropy
                against ``1 - label_smoothing`` on the label plus ``label_smoothing`` spread
                evenly over all classes; 0 is plain negative log-likelihood. Validation and
                test losses stay plain negative log-likelihood.
            net: the network to train instead of a fresh ``SeedCNN``: a class path and its
                init args, e.g. the project's ``cnn.mx.resnet.ResNet`` or your own
                ``mlx.nn.Module``, which takes normalised float32 images ``(N, H, W, C)`` and
                returns log-probabilities ``(N, num_classes)``; its arguments are its own
                (not linked from the data).
            init_from: a checkpoint (either framework's, or a converted file) whose network
                weights a new ``fit`` starts from, with a fresh optimizer (``start_from``); a
                resumed ``fit`` (``--ckpt_path``) and evaluations leave it unread.
        """
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        # an mlx Module is a dict: one without parameters is falsy, and still the user's network
        self.net = net if net is not None else SeedCNN(in_channels, image_size, num_classes, dropout, seed,
                                                       conv_backward_chunk=conv_backward_chunk)
        # data statistics, saved with the weights but not trained (torch's buffers)
        self.register_buffer("mean", mx.zeros((in_channels,)))
        self.register_buffer("std", mx.ones((in_channels,)))
        self._train_acc_epoch: int | None = None  # the epoch whose train/acc was measured last

    def start_from(self, path: str) -> str | None:
        """Load the network weights of the checkpoint at ``path`` (``cnn.weights.initial_weights``);
        the ``note:`` text when its last layer was left as initialised."""
        own = {k: tuple(v.shape) for k, v in tree_flatten(self.net.parameters())}
        arrays, note = initial_weights(path, own, self.hparams.num_classes, "mlx")
        self.net.load_weights([(k, mx.array(v)) for k, v in arrays.items()], strict=False)
        return note

    def setup(self, stage: str) -> None:
        if stage == "fit":
            check_parameters(sum(v.size for _, v in tree_flatten(self.net.trainable_parameters())), self.net)
        datamodule = getattr(self.trainer, "datamodule", None)
        # a user's DataModule (--data CLASS) may have no statistics: images stay on [0, 1]
        if getattr(datamodule, "norm", None) is not None:
            self.mean = mx.array(datamodule.norm.mean, dtype=mx.float32)
            self.std = mx.array(datamodule.norm.std, dtype=mx.float32)

    def __call__(self, images: mx.array) -> mx.array:
        # in the dtype of the weights: float32, or what Trainer(precision=...) casts them to for a step
        x = images.astype(self.mean.dtype) / 255.0
        out = self.net((x - self.mean) / self.std)
        # a user's network: its contract, before any loss (shapes are known while tracing too)
        check_output(out, images.shape[0], self.hparams.num_classes, self.net)
        return out

    def training_step(self, batch, batch_idx):
        images, labels = batch
        loss = training_loss(self(images), labels, self.hparams.label_smoothing)
        self.log(schema.TRAIN_LOSS, loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._measure_train_accuracy()

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
        counts = np.zeros(2, dtype=np.int64)  # correct, seen
        for images, labels in probe():
            counts += ((self(images).argmax(axis=1) == labels).sum().item(), labels.size)
        self.train(was_training)
        # every rank's probe shard (DDP): gathered, (world_size, 2) -> summed
        correct, total = np.array(self.all_gather(mx.array(counts))).reshape(-1, 2).sum(axis=0)
        accuracy = float(correct) / max(int(total), 1)
        self.log(schema.TRAIN_ACC, accuracy, prog_bar=True, logger=False, on_step=False, on_epoch=True,
                 batch_size=max(int(total), 1))
        write_epoch_end(self, {schema.TRAIN_ACC: accuracy})

    def _evaluate(self, batch, loss_tag: str, acc_tag: str) -> mx.array:
        images, labels = batch
        log_probs = self(images)
        loss = nn.losses.nll_loss(log_probs, labels, reduction="mean")
        accuracy = (log_probs.argmax(axis=1) == labels).astype(mx.float32).mean()
        self.log(loss_tag, loss, prog_bar=True, batch_size=labels.size, sync_dist=True)
        self.log(acc_tag, accuracy, prog_bar=True, batch_size=labels.size, sync_dist=True)
        return log_probs

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, schema.VAL_LOSS, schema.VAL_ACC)

    def on_test_epoch_start(self) -> None:
        self._test_outcomes: list[tuple[np.ndarray, np.ndarray]] = []

    def test_step(self, batch, batch_idx):
        # The predicted classes leave as the step's output: test_step is compiled, and numpy
        # may only read arrays outside the compiled function (on_test_batch_end).
        return self._evaluate(batch, schema.TEST_LOSS, schema.TEST_ACC).argmax(axis=1)

    def on_test_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._test_outcomes.append((np.array(batch[1]), np.array(outputs)))

    def on_test_epoch_end(self) -> None:
        labels, predictions = (np.concatenate(part) for part in zip(*self._test_outcomes))
        # every rank's share of the test set (DDP): gathered, (world_size, n) -> one array
        labels, predictions = (np.array(self.all_gather(a)).reshape(-1) for a in (labels, predictions))
        report_test_epoch(self, labels, predictions)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_checkpoint_fits(checkpoint, self)

    def predict_step(self, batch, batch_idx):
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return mx.exp(self(images))

    def configure_optimizers(self):
        optimizer = AdamL2(self.hparams.lr, weight_decay=self.hparams.weight_decay,
                           betas=tuple(self.hparams.betas))
        total = self.trainer.estimated_stepping_batches
        schedule = partial(learning_rate_at, total_steps=total, base_lr=self.hparams.lr,
                           schedule=self.hparams.lr_schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class AdamL2(optim.Adam):
    """``torch.optim.Adam`` exactly: bias-corrected moments, and ``weight_decay`` as an L2 term
    added to the gradient before the moments (MLX's Adam has neither by default; AdamW's
    decoupled decay is a different algorithm)."""

    def __init__(self, learning_rate: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(learning_rate, betas=list(betas), eps=eps, bias_correction=True)
        self.weight_decay = weight_decay

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict) -> mx.array:
        if self.weight_decay:
            gradient = gradient + self.weight_decay * parameter
        return super().apply_single(gradient, parameter, state)
