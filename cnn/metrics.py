"""Where the errors are: per-class accuracy and the confusion matrix, from predictions.

Computed once here, in numpy, from the labels and predicted classes a ``test`` collected;
``report_test_epoch`` is the end of ``test`` on both sides: each framework only gathers its
ranks' labels and predictions and hands them over.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cnn import atomic, schema


@dataclass(frozen=True)
class ConfusionReport:
    """``matrix[i, j]``: test images of class ``i`` predicted as ``j``; ``image``: it drawn."""

    matrix: np.ndarray
    classes: tuple[str, ...]

    @property
    def class_accuracy(self) -> np.ndarray:
        totals = self.matrix.sum(axis=1)
        return np.divide(np.diag(self.matrix), totals, out=np.zeros(len(totals)),
                         where=totals > 0)

    def scalars(self) -> dict[str, float]:
        """Per-class accuracy as log tags ``test/acc_class/<class name>``."""
        return {schema.TEST_CLASS_ACC_PREFIX + tag_safe(name): float(acc)
                for name, acc in zip(self.classes, self.class_accuracy)}

    def image(self) -> np.ndarray:
        """The matrix drawn as a uint8 RGB image (H, W, 3), row-normalised colours."""
        figure = self._figure()
        figure.canvas.draw()
        return np.asarray(figure.canvas.buffer_rgba())[:, :, :3].copy()

    def _figure(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(self.classes)
        size = min(4 + 0.45 * n, 24)
        figure = Figure(figsize=(size, size), dpi=80 if n <= 20 else 50)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        rows = self.matrix / np.maximum(self.matrix.sum(axis=1, keepdims=True), 1)
        axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        if n <= 20:  # numbers and names stay legible up to CIFAR-10's size
            for i in range(n):
                for j in range(n):
                    if self.matrix[i, j]:
                        axes.text(j, i, str(self.matrix[i, j]), ha="center", va="center",
                                  color="white" if rows[i, j] > 0.5 else "black", fontsize=8)
            axes.set_xticks(range(n), self.classes, rotation=45, ha="right")
            axes.set_yticks(range(n), self.classes)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        accuracy = np.trace(self.matrix) / max(self.matrix.sum(), 1)
        axes.set_title(f"test accuracy {accuracy:.2%} ({int(self.matrix.sum())} images)")
        figure.tight_layout()
        return figure


def tag_safe(name: str) -> str:
    """A class name usable as the last part of a TensorBoard tag (``T-shirt/top`` -> ``T-shirt_top``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def confusion_report(labels: np.ndarray, predictions: np.ndarray,
                     classes: Sequence[str]) -> ConfusionReport:
    """Count (true, predicted) pairs into a ``len(classes)``-square matrix."""
    n = len(classes)
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    matrix = np.bincount(labels * n + predictions, minlength=n * n).reshape(n, n)
    return ConfusionReport(matrix, tuple(classes))


def confusion_png_path(ckpt_path: str | None, log_dir: str | None) -> Path | None:
    """Beside the checkpoint tested (``<ckpt file name>.confusion.png``), else in the run's log folder.

    The whole file name, suffix included, is kept: without a logger both frameworks write
    ``epoch=E-step=S`` into one ``checkpoints`` folder (``.ckpt`` and ``.safetensors``), and their
    pictures must not overwrite each other.
    """
    if ckpt_path:
        path = Path(ckpt_path)
        return path.with_name(path.name + ".confusion.png")
    if log_dir:
        return Path(log_dir) / "confusion.png"
    return None


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 ``H x W x 3`` image to ``path`` as a PNG, atomically (``cnn.atomic``: temp
    file, then rename)."""
    from matplotlib.image import imsave

    path = Path(path)
    with atomic.atomic_path(path) as tmp:
        imsave(tmp, image, format="png")
    return path


def log_image(loggers: Sequence, tag: str, image: np.ndarray, step: int) -> None:
    """Give a uint8 ``H x W x 3`` image to each logger that can take one; the others (CSV) skip it.

    Each logger's own call: TensorBoard's ``SummaryWriter.add_image`` (torch), ``log_image(tag,
    image, step)`` (the MLX loggers), ``WandbLogger.log_image``, and the ``log_image`` of MLflow's
    and Comet's experiment objects. Lightning loggers share no image call, so it goes by type.
    """
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            logger.log_image(key=tag, images=[image], step=step)
        elif kind == "MLFlowLogger":
            logger.experiment.log_image(logger.run_id, image, f"{tag}/step_{step}.png")
        elif kind == "CometLogger":
            logger.experiment.log_image(image, name=tag, step=step)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):
            logger.experiment.add_image(tag, image, step, dataformats="HWC")
        elif callable(getattr(logger, "log_image", None)):
            logger.log_image(tag, image, step)


def report_test_epoch(module, labels: np.ndarray, predictions: np.ndarray) -> ConfusionReport:
    """``on_test_epoch_end`` of either side's ``Classifier``: the report of every rank's
    ``labels`` and predicted classes (already gathered), which rank zero alone saves as a PNG
    (``confusion_png_path``) and gives to each of ``module.loggers``: per-class accuracy as
    scalars and the matrix as an image, at ``module.global_step``. Class names: the model's
    ``hparams.classes``, else the class indices."""
    hparams, trainer = module.hparams, module.trainer
    report = confusion_report(labels, predictions, hparams.classes or
                              [str(i) for i in range(hparams.num_classes)])
    # every rank asks: Lightning's Trainer.log_dir is a broadcast from rank zero
    png = confusion_png_path(trainer.ckpt_path, trainer.log_dir)
    if not trainer.is_global_zero or (png is None and not module.loggers):
        return report
    image = report.image()  # drawn once, for the file and the loggers
    if png is not None:
        save_png(image, png)
    if module.loggers:  # every logger, each what it can take
        for logger in module.loggers:
            logger.log_metrics(report.scalars(), step=module.global_step)
        log_image(module.loggers, schema.TEST_CONFUSION_IMAGE, image, module.global_step)
    return report


def write_epoch_end(module, values: Mapping[str, float]) -> None:
    """Give ``values`` of the training epoch ending now to each of ``module.loggers`` at once,
    as Lightning's epoch-end writing would give them after the epoch's hooks: at the epoch's
    last step (``global_step - 1``) with its ``epoch``, then ``save()`` (which flushes), on rank
    zero.

    Lightning writes an epoch's values after the checkpoints of its end are saved, and a run
    resumed from one of those continues with the next epoch: a kill while one was written
    would lose the values for good. Written before, they are on disk whatever stops the run.
    """
    if not module.trainer.is_global_zero:
        return
    for logger in module.loggers:
        logger.log_metrics({**values, "epoch": module.current_epoch}, step=module.global_step - 1)
        logger.save()
