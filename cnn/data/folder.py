"""Your own images: a folder of class subfolders, decoded once in parallel and then cached.

Layout, as torchvision's ``ImageFolder`` and Keras's ``image_dataset_from_directory`` read it:
``ROOT/<class>/<image>`` (any depth below the class folder), class names = the subfolder names,
sorted; or ``ROOT/train/<class>/...`` beside ``ROOT/test/<class>/...``, which are then the train
and test sets. Names starting with ``.`` (files and folders) are ignored; every other file is a
candidate image (PNG, JPEG, BMP, GIF's first frame, WebP: whatever Pillow opens).

Each file is converted by ``cnn.data.images.load_image``, the function ``predict`` uses, so
training and prediction see the same pixels. A file that cannot be converted (not an image,
truncated, over Pillow's size limit) is skipped and reported in one ``warning:`` line; the tree
itself being unusable (no class folders, fewer than two, an empty one, a test class the train
set lacks) is a one-line ``DataError``.

Decoding is the slow part, so the decoded uint8 arrays are kept in the user cache
(``cnn.data.fetch.cache_dir()/folders``) under a key of the file list, sizes, modification
times, image size and channels (and the Pillow version), written atomically (``cnn.atomic``):
an unchanged folder is read back from one file, a changed one is decoded again and its stale
cache file removed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import multiprocessing
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL

from cnn import atomic
from cnn.data.fetch import cache_dir
from cnn.data.images import load_image
from cnn.errors import DataError

TRAIN, TEST = "train", "test"
CACHE_FORMAT = 1  # bump when the cache file or the conversion in load_image changes
PARALLEL_FROM = 512  # files: below this, starting worker processes costs more than it saves
REPORT_FIRST = 3  # bad files named in the summary line
PROGRESS_EVERY = 2000  # class folders listed between two progress lines (a few seconds' work)
_reported: set[str] = set()  # cache keys whose skipped files this command has reported
_checked: set[tuple[str, int]] = set()  # (folder, its mtime) whose class folders this command checked


@dataclass(frozen=True)
class FolderListing:
    """Every candidate file of a class-folder tree, in a fixed order, without reading any.

    ``files`` are paths relative to ``root``, sorted by (part, class, path); ``labels`` their
    class indices into ``classes``; ``parts`` 0 for the train set, 1 for the test set (all 0
    unless ``split``, the ``train/`` + ``test/`` layout); ``stamps`` (size, mtime_ns) per file.
    """

    root: Path
    classes: tuple[str, ...]
    split: bool
    files: tuple[str, ...]
    labels: np.ndarray
    parts: np.ndarray
    stamps: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class DecodedFolder:
    """A listing's readable images: uint8 ``images`` (N, H, W, C) with their int64 ``labels``
    and uint8 ``parts`` (0 train, 1 test); ``skipped`` the paths (relative to the root) of the
    files that could not be converted."""

    images: np.ndarray
    labels: np.ndarray
    parts: np.ndarray
    skipped: tuple[str, ...]


def _visible(name: str) -> bool:
    return not name.startswith(".")


def is_split(root: Path) -> bool:
    """Whether ``root`` holds ``train/`` and ``test/`` (then the two sets) or class folders."""
    return (root / TRAIN).is_dir() and (root / TEST).is_dir()


def _class_dirs(directory: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(directory) if _visible(e.name) and e.is_dir())


def folder_classes(root: str | os.PathLike | None) -> tuple[str, ...]:
    """The class names of the tree at ``root`` (its train set's, in the split layout), sorted.

    Only folder names are read, so this is cheap enough for the config's links. Raises
    ``DataError``: no ``root`` given, not a directory, fewer than two class folders.
    """
    if not root:
        raise DataError("dataset folder needs --data.data_dir: a folder of class subfolders "
                        "(PATH/<class>/<image>)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data.data_dir {root} is not a directory: give a folder of class "
                        f"subfolders (PATH/<class>/<image>)")
    where = root / TRAIN if is_split(root) else root
    classes = _class_dirs(where)
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise DataError(f"{where} needs at least two class subfolders (PATH/<class>/<image>), "
                        f"found {found}")
    for top in (root / TRAIN, root / TEST) if is_split(root) else (root,):
        # the config's links ask for the classes many times: a folder whose entries did not
        # change since (its modification time) was checked already
        key = (str(top.resolve()), top.stat().st_mtime_ns)
        if key not in _checked:
            check_distinct_classes(top, _class_dirs(top))
            _checked.add(key)
    return tuple(classes)


def check_distinct_classes(top: Path, names: list[str]) -> None:
    """DataError unless the class folders ``names`` under ``top``, links resolved, are distinct
    and none lies inside another: a link back into the dataset would make a class of other
    classes' images (or the same images twice, under two labels). Linear in the folders (times
    their depth): each resolved folder is looked up among the others and among their parents."""
    # links first: the line should name the link, the likelier mistake
    order = sorted(names, key=lambda n: not (top / n).is_symlink())
    resolved = {name: (top / name).resolve() for name in order}
    at: dict[Path, list[str]] = {}  # a resolved folder -> the class folders there, in order
    first_under: dict[Path, str] = {}  # a folder -> the first class folder inside it
    for name, where in resolved.items():
        at.setdefault(where, []).append(name)
        for parent in where.parents:
            first_under.setdefault(parent, name)
    for name, where in resolved.items():
        link = f" (a link to {where})" if (top / name).is_symlink() else ""
        same = [other for other in at[where] if other != name]
        if same:
            raise DataError(f"class folder {top / name}{link} is the class folder {top / same[0]}; "
                            "each class needs a folder of its own")
        if where in first_under:
            raise DataError(f"class folder {top / name}{link} holds the class folder "
                            f"{top / first_under[where]}; a class folder must not hold another")


def _files_under(directory: Path) -> list[Path]:
    found = []
    for here, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if _visible(d))  # in place: os.walk skips the others
        found += [Path(here) / n for n in sorted(names) if _visible(n)]
    return found


def list_folder(root: str | os.PathLike) -> FolderListing:
    """List the tree at ``root`` (see the module docstring); ``DataError`` if unusable."""
    classes = folder_classes(root)
    root = Path(root).expanduser()
    split = is_split(root)
    files, labels, parts, stamps = [], [], [], []
    index = {name: i for i, name in enumerate(classes)}
    for part, top in enumerate((root / TRAIN, root / TEST) if split else (root,)):
        names = _class_dirs(top)
        strangers = [n for n in names if n not in index]
        if strangers:
            raise DataError(f"{top} has class folders the train set lacks: "
                            f"{', '.join(strangers)}; add them to {root / TRAIN} or remove them")
        for done, name in enumerate(names):
            if done and done % PROGRESS_EVERY == 0:  # by work done, so a long listing says how far it is
                print(f"listing {top}: {done:,} of {len(names):,} class folders", file=sys.stderr)
            paths = _files_under(top / name)
            if not paths:
                raise DataError(f"class folder {top / name} holds no files; add images or "
                                f"remove the folder")
            for path in paths:
                stat = path.stat()
                files.append(path.relative_to(root).as_posix())
                stamps.append((stat.st_size, stat.st_mtime_ns))
            labels += [index[name]] * len(paths)
            parts += [part] * len(paths)
    return FolderListing(root, classes, split, tuple(files), np.array(labels, np.int64),
                         np.array(parts, np.uint8), tuple(stamps))


def cache_key(listing: FolderListing, image_shape: tuple[int, int, int]) -> str:
    """A digest of everything the decoded arrays depend on (not of the folder's location)."""
    what = [CACHE_FORMAT, PIL.__version__, list(image_shape), listing.classes,
            list(zip(listing.files, listing.stamps))]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()


def cache_file(listing: FolderListing, key: str) -> Path:
    """``<cache>/folders/<digest of the folder's path>-<key>.npz``: one live file per folder."""
    where = hashlib.sha256(str(listing.root.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "folders" / f"{where}-{key[:32]}.npz"


def _decode_many(paths: list[str], image_shape: tuple[int, int, int]) -> list:
    """Worker: each file's array, or None when it is not a readable image."""
    out = []
    for path in paths:
        try:
            out.append(load_image(path, image_shape))
        except DataError:
            out.append(None)
    return out


def _workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def _bar(total: int, label: str):
    from tqdm import tqdm

    # disable=None: a bar on a terminal, silence in logs and tests (as downloads do).
    return tqdm(total=total, unit="img", desc=label, disable=None, leave=False)


def _decode(listing: FolderListing, image_shape: tuple[int, int, int]) -> DecodedFolder:
    paths = [str(listing.root / f) for f in listing.files]
    images = np.zeros((len(paths), *image_shape), np.uint8)
    ok = np.zeros(len(paths), bool)
    skipped = []
    workers = _workers() if len(paths) >= PARALLEL_FROM else 1
    chunk = max(16, len(paths) // (workers * 8))
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    workers = min(workers, len(chunks))
    with _bar(len(paths), f"decoding {listing.root.name}") as bar:
        if workers == 1:
            results = (_decode_many(c, image_shape) for c in chunks)
            pool = None
        else:
            # spawn, not fork: the parent may already run torch's or MLX's threads.
            pool = concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(_decode_many, chunks, [image_shape] * len(chunks))
        try:
            start = 0
            for result in results:
                for i, array in enumerate(result, start):
                    if array is None:
                        skipped.append(listing.files[i])
                    else:
                        images[i], ok[i] = array, True
                start += len(result)
                bar.update(len(result))
        finally:
            if pool is not None:  # on Ctrl-C too: no worker left behind
                pool.shutdown(wait=True, cancel_futures=True)
    if ok.all():  # the usual case: no second copy of every image
        return DecodedFolder(images, listing.labels, listing.parts, ())
    return DecodedFolder(images[ok], listing.labels[ok], listing.parts[ok], tuple(skipped))


def _read_cache(path: Path, listing: FolderListing,
                image_shape: tuple[int, int, int]) -> DecodedFolder | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            decoded = DecodedFolder(f["images"], f["labels"], f["parts"],
                                    tuple(str(s) for s in f["skipped"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # damaged: decode again and replace it
    n = len(decoded.labels)
    if (decoded.images.shape != (n, *image_shape) or decoded.parts.shape != (n,)
            or n + len(decoded.skipped) != len(listing.files)):
        return None
    return decoded


def _write_cache(path: Path, decoded: DecodedFolder) -> None:
    try:
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, images=decoded.images, labels=decoded.labels, parts=decoded.parts,
                     skipped=np.array(decoded.skipped, dtype=str))
    except OSError as error:  # a read-only or full cache only costs the next run its speed
        print(f"warning: could not cache the decoded images in {path} ({error.strerror or error}); "
              "the next run decodes them again", file=sys.stderr)
        return
    for stale in path.parent.glob(path.name.split("-")[0] + "-*.npz"):
        if stale != path:  # the same folder as it was before it changed
            with contextlib.suppress(OSError):
                stale.unlink()


def forget_reported() -> None:
    """Start a new command: each folder's skipped files are reported again, once (a command loads
    its folder more than once; ``cnn.cli`` calls this first, so that commands run one after another
    in one process each report them, as separate processes would), and checks its folders anew."""
    _reported.clear()
    _checked.clear()


def _report(listing: FolderListing, decoded: DecodedFolder, key: str) -> None:
    if not decoded.skipped or key in _reported:
        return
    _reported.add(key)
    first = ", ".join(decoded.skipped[:REPORT_FIRST])
    more = f" and {len(decoded.skipped) - REPORT_FIRST} more" if len(decoded.skipped) > REPORT_FIRST else ""
    print(f"warning: skipped {len(decoded.skipped)} of {len(listing.files)} files under "
          f"{listing.root} that are not images Pillow can read whole (or are over its size limit): "
          f"{first}{more}", file=sys.stderr)


def load_folder(root: str | os.PathLike, image_shape: tuple[int, int, int]) -> tuple[FolderListing,
                                                                                      DecodedFolder]:
    """The listing of ``root`` and its images converted to ``image_shape`` (H, W, C).

    From the cache when the folder is unchanged, else decoded (in parallel from
    ``PARALLEL_FROM`` files, with a progress bar on a terminal) and cached. Bad files are
    skipped and reported once per process in one ``warning:`` line. A class left without a
    readable image is a ``DataError``.
    """
    listing = list_folder(root)
    key = cache_key(listing, image_shape)
    path = cache_file(listing, key)
    decoded = _read_cache(path, listing, image_shape)
    if decoded is None:
        decoded = _decode(listing, image_shape)
        _write_cache(path, decoded)
    _report(listing, decoded, key)
    train_labels = decoded.labels[decoded.parts == 0]
    for index, name in enumerate(listing.classes):
        if not np.any(train_labels == index):
            where = listing.root / TRAIN / name if listing.split else listing.root / name
            raise DataError(f"class folder {where} holds no readable image; add images or "
                            f"remove the folder")
    return listing, decoded
