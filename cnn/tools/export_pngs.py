"""``python -m cnn.tools.export_pngs OUT``: a dataset's images written out as a class-folder tree.

Writes ``OUT/<class>/<class>_<n>.png``, the first ``--per-class`` images of each class of the
official training set, in file order; with ``--test-per-class M`` it writes the split layout
instead, ``OUT/train/<class>/...`` from the training set and ``OUT/test/<class>/...`` (M per
class) from the official test set. MNIST ships with the package, so the default needs no
network; the result is a ``--data.dataset folder`` tree to try training on your own images:

    python -m cnn.tools.export_pngs /tmp/digits --per-class 100
    python cli.py fit --config configs/folder.yaml --data.data_dir /tmp/digits \\
        --data.image_size 28 --data.channels 1 --data.augment false

Class names that are not usable as folder names (``T-shirt/top``) have such characters
replaced by ``_``. Every file is written atomically (``cnn.atomic``).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cnn import atomic
from cnn.data.datasets import DATASETS, ImageSet, load_dataset
from cnn.errors import DataError


def folder_name(class_name: str) -> str:
    """A class name as a folder name: path separators and other awkward characters -> ``_``."""
    return re.sub(r"[^\w .+-]+", "_", class_name).strip(" .") or "_"


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 (H, W, C) image, C 1 or 3, as PNG bytes (grey or RGB)."""
    buffer = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def export(images: ImageSet, classes: tuple[str, ...], out: Path, per_class: int) -> int:
    """The first ``per_class`` images of each class as ``out/<class>/<class>_<n>.png``; how many."""
    written = 0
    for label, name in enumerate(classes):
        folder = folder_name(name)
        for n, index in enumerate(np.flatnonzero(images.labels == label)[:per_class]):
            atomic.write_bytes(out / folder / f"{folder}_{n:05d}.png", png_bytes(images.images[index]))
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn.tools.export_pngs",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write the class folders into")
    parser.add_argument("--dataset", default="mnist", choices=list(DATASETS),
                        help="which dataset's images (mnist ships with the package)")
    parser.add_argument("--per-class", type=int, default=100, help="training images per class")
    parser.add_argument("--test-per-class", type=int, default=0,
                        help="also write OUT/test/<class> from the official test set (and put "
                             "the training images in OUT/train/<class>)")
    parser.add_argument("--data-dir", default=None, help="where the dataset's files are")
    args = parser.parse_args(argv)
    if args.per_class < 1 or args.test_per_class < 0:
        parser.error("--per-class must be at least 1 and --test-per-class at least 0")
    try:
        data = load_dataset(args.dataset, data_dir=args.data_dir)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    classes = data.spec.classes
    if args.test_per_class:
        written = export(data.train, classes, args.out / "train", args.per_class)
        written += export(data.test, classes, args.out / "test", args.test_per_class)
    else:
        written = export(data.train, classes, args.out, args.per_class)
    print(f"wrote {written} PNG images of {data.spec.title} in {len(classes)} class folders "
          f"under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
