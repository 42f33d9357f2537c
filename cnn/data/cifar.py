"""Reader and writer for the official CIFAR-10 and CIFAR-100 "python version" files.

The official files are Python 2 pickles (protocol 2) of dicts with byte-string keys. ``data``
is a uint8 array of N rows x 3072 columns, each row channel-major: 1024 red values, then
1024 green, then 1024 blue, each plane row by row. Readers reshape to (N, 3, 32, 32) and
transpose to NHWC (N, 32, 32, 3); skipping the transpose silently scrambles every image.

Pickles can run arbitrary code, so they are read with an unpickler that admits only the
three numpy callables an array needs; anything else is refused before it is called.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn.errors import DataError

try:  # numpy >= 1.26 / 2.x; the old name still exists there but warns.
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy < 1.26
    from numpy.core.multiarray import _reconstruct

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
CIFAR10_META = "batches.meta"
CIFAR100_DIR = "cifar-100-python"
CIFAR100_TRAIN, CIFAR100_TEST, CIFAR100_META = "train", "test", "meta"

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm")
CIFAR100_COARSE_CLASSES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2")

ROW = 3 * 32 * 32
OFFICIAL_BATCH = 10000  # rows in each CIFAR-10 batch file
OFFICIAL_TRAIN, OFFICIAL_TEST = 50000, 10000

# What an official file may name: numpy's array reconstruction, under its Python 2-era module
# path (what the real files contain) and its numpy 2 path (what numpy writes today).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


@dataclass(frozen=True)
class CifarData:
    """Both splits of a CIFAR dataset as read from disk.

    ``*_images`` are uint8 (N, 32, 32, 3) RGB, ``*_labels`` int64 (N,) in
    ``[0, len(label_names))``; ``label_names`` come from the meta file. For CIFAR-100 the
    labels are the fine ones and the ``coarse_*`` fields hold the 20 superclasses (None for
    CIFAR-10, or when a CIFAR-100 file lacks them).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    label_names: tuple[str, ...]
    coarse_train_labels: np.ndarray | None = None
    coarse_test_labels: np.ndarray | None = None
    coarse_label_names: tuple[str, ...] | None = None


class _Unpickler(pickle.Unpickler):
    """Admits only numpy array reconstruction: a crafted file cannot run code."""

    def __init__(self, data: bytes, path: Path):
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"refusing to load {self.path}: it asks to run {module}.{name}, "
                            "which no official CIFAR file does; delete it and download the "
                            "official archive again") from None


def load_pickle(path: str | os.PathLike) -> dict:
    """Load one official CIFAR pickle safely; the result is a dict with ``bytes`` keys."""
    path = Path(path)
    try:
        data = path.read_bytes()
        obj = _Unpickler(data, path).load()
    except DataError:
        raise
    except Exception as error:  # a damaged pickle can fail in many ways; all mean the same
        raise DataError(f"cannot read {path} as a CIFAR pickle ({type(error).__name__}: "
                        f"{error}); download the official archive again") from error
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a CIFAR dict; replace it")
    return obj


def _field(batch: dict, key: str, path: Path):
    try:
        return batch[key.encode()]
    except KeyError:
        raise DataError(f"{path} has no '{key}' entry, so it is not an official CIFAR "
                        "file; replace it") from None


def _labels(batch: dict, key: str, rows: int, classes: int, path: Path) -> np.ndarray:
    labels = np.asarray(_field(batch, key, path))
    if rows == 0 and labels.shape == (0,):
        return np.zeros(0, np.int64)  # np.asarray([]) is float64
    if labels.shape != (rows,) or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: '{key}' should be {rows} integers, got shape {labels.shape} "
                        f"of {labels.dtype}; replace the file")
    if rows and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(f"{path}: '{key}' has values outside 0..{classes - 1}; replace the file")
    return labels.astype(np.int64)


def _read_split(paths: list[Path], classes: int, fine_key: str, coarse_key: str | None = None,
                coarse_classes: int = 0, batch_rows: int | None = None):
    """Concatenate batch files into NHWC images and labels, checking each file's layout."""
    batches = [load_pickle(p) for p in paths]
    for path, batch in zip(paths, batches):
        data = _field(batch, "data", path)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != ROW:
            raise DataError(f"{path}: 'data' should be uint8 rows of {ROW} values, got "
                            f"{getattr(data, 'shape', type(data).__name__)}; replace the file")
        if batch_rows is not None and len(data) != batch_rows:
            raise DataError(f"{path} holds {len(data)} images, the official file {batch_rows}; "
                            "download the official archive again")
    images = np.empty((sum(len(b[b"data"]) for b in batches), 32, 32, 3), np.uint8)
    fine, coarse, start = [], [], 0
    for path, batch in zip(paths, batches):
        data = batch[b"data"]
        n = len(data)
        # A row is three 32x32 planes, R then G then B; plane c becomes channel c of NHWC
        # (one plane at a time: faster than copying the full transpose; docs/performance.md).
        planes = data.reshape(n, 3, 32, 32)
        for c in range(3):
            images[start:start + n, :, :, c] = planes[:, c]
        fine.append(_labels(batch, fine_key, n, classes, path))
        if coarse_key is not None and coarse_key.encode() in batch:
            coarse.append(_labels(batch, coarse_key, n, coarse_classes, path))
        start += n
    coarse_labels = np.concatenate(coarse) if coarse and len(coarse) == len(paths) else None
    return images, np.concatenate(fine), coarse_labels


def _names(meta: dict, key: str, count: int, path: Path) -> tuple[str, ...]:
    names = tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n)
                  for n in _field(meta, key, path))
    if len(names) != count:
        raise DataError(f"{path}: '{key}' lists {len(names)} classes, expected {count}; "
                        "replace the file")
    return names


def _check_totals(train: np.ndarray, test: np.ndarray, directory: Path) -> None:
    if (len(train), len(test)) != (OFFICIAL_TRAIN, OFFICIAL_TEST):
        raise DataError(f"{directory} holds {len(train)} train / {len(test)} test images, the "
                        f"official files {OFFICIAL_TRAIN} / {OFFICIAL_TEST}; download again")


def read_cifar10(directory: str | os.PathLike, official: bool = False) -> CifarData:
    """Read ``data_batch_1..5``, ``test_batch`` and ``batches.meta`` from ``directory``.

    Always checks each file's layout, that rows and labels agree and that labels lie in
    0..9. ``official=True`` (for files whose checksums matched the published ones) also
    requires the official counts: 10000 rows per batch, 50000 train and 10000 test.
    """
    directory = Path(directory)
    meta = load_pickle(directory / CIFAR10_META)
    names = _names(meta, "label_names", len(CIFAR10_CLASSES), directory / CIFAR10_META)
    rows = OFFICIAL_BATCH if official else None
    train, train_labels, _ = _read_split([directory / f for f in CIFAR10_TRAIN], 10, "labels",
                                         batch_rows=rows)
    test, test_labels, _ = _read_split([directory / CIFAR10_TEST], 10, "labels",
                                       batch_rows=rows)
    if official:
        _check_totals(train, test, directory)
    return CifarData(train, train_labels, test, test_labels, names)


def read_cifar100(directory: str | os.PathLike, official: bool = False) -> CifarData:
    """Read ``train``, ``test`` and ``meta`` from ``directory`` (fine labels; coarse kept).

    Same checks as ``read_cifar10``, with 100 fine and 20 coarse classes.
    """
    directory = Path(directory)
    meta_path = directory / CIFAR100_META
    meta = load_pickle(meta_path)
    fine_names = _names(meta, "fine_label_names", len(CIFAR100_CLASSES), meta_path)
    coarse_names = (_names(meta, "coarse_label_names", len(CIFAR100_COARSE_CLASSES), meta_path)
                    if b"coarse_label_names" in meta else None)
    splits = [_read_split([directory / f], 100, "fine_labels", "coarse_labels", 20)
              for f in (CIFAR100_TRAIN, CIFAR100_TEST)]
    (train, train_labels, train_coarse), (test, test_labels, test_coarse) = splits
    if official:
        _check_totals(train, test, directory)
    return CifarData(train, train_labels, test, test_labels, fine_names,
                     train_coarse, test_coarse, coarse_names)


# ----------------------------------------------------------------------------- writing
class _Py2Pickler(pickle._Pickler):
    """Writes pickles the way Python 2's cPickle wrote the official files.

    Strings become Python 2 ``str`` opcodes (read back as ``bytes`` with
    ``encoding='bytes'``) and numpy's ``_reconstruct`` is named by its old module path, so
    files made by tests exercise the reader exactly as the real downloads do.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_str8(self, obj):
        raw = obj.encode("ascii") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)

    dispatch[bytes] = _save_str8
    dispatch[str] = _save_str8

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
        else:
            super().save_global(obj, name)


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _rows(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f"CIFAR images must be uint8 (N, 32, 32, 3), got {images.dtype} "
                         f"{images.shape}")
    # NHWC -> channel-major rows: the inverse of what the reader does.
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), ROW)


def _batch(label: str, images, **labels) -> dict:
    """One batch dict with the official keys; ``labels`` maps each label key to its values."""
    return {b"batch_label": label.encode(),
            **{key.encode(): [int(v) for v in np.asarray(values)]
               for key, values in labels.items()},
            b"data": _rows(images),
            b"filenames": [f"image_s_{i:06d}.png".encode() for i in range(len(images))]}


def write_cifar10(root: str | os.PathLike, train_images, train_labels, test_images,
                  test_labels, label_names=CIFAR10_CLASSES) -> Path:
    """Write a CIFAR-10 in the official layout under ``root/cifar-10-batches-py``.

    Images are uint8 NHWC; the train set is split over five batch files like the original
    (any size is allowed, for small test fixtures). Returns the directory written.
    """
    out = Path(root) / CIFAR10_DIR
    out.mkdir(parents=True, exist_ok=True)
    parts = np.array_split(np.arange(len(train_images)), len(CIFAR10_TRAIN))
    for i, (name, idx) in enumerate(zip(CIFAR10_TRAIN, parts), 1):
        _dump(out / name, _batch(f"training batch {i} of 5", np.asarray(train_images)[idx],
                                 labels=np.asarray(train_labels)[idx]))
    _dump(out / CIFAR10_TEST, _batch("testing batch 1 of 1", test_images, labels=test_labels))
    _dump(out / CIFAR10_META, {b"num_cases_per_batch": OFFICIAL_BATCH,
                               b"label_names": [n.encode() for n in label_names],
                               b"num_vis": ROW})
    return out


def write_cifar100(root: str | os.PathLike, train_images, train_labels, test_images,
                   test_labels, train_coarse=None, test_coarse=None,
                   label_names=CIFAR100_CLASSES,
                   coarse_names=CIFAR100_COARSE_CLASSES) -> Path:
    """Write a CIFAR-100 in the official layout under ``root/cifar-100-python``.

    Coarse labels default to 0 when not given (the reader does not need them to be real).
    Returns the directory written.
    """
    out = Path(root) / CIFAR100_DIR
    out.mkdir(parents=True, exist_ok=True)
    for name, label, images, fine, coarse in (
            (CIFAR100_TRAIN, "training", train_images, train_labels, train_coarse),
            (CIFAR100_TEST, "testing", test_images, test_labels, test_coarse)):
        coarse = np.zeros(len(images), np.int64) if coarse is None else coarse
        _dump(out / name, _batch(f"{label} batch 1 of 1", images,
                                 fine_labels=fine, coarse_labels=coarse))
    _dump(out / CIFAR100_META, {b"fine_label_names": [n.encode() for n in label_names],
                                b"coarse_label_names": [n.encode() for n in coarse_names]})
    return out
