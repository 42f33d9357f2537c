"""Find a dataset's files on disk, or download and verify them.

Lookup order, first directory holding *all* of a dataset's files wins:

1. the ``data_dir`` argument,
2. the ``CNN_DATA_DIR`` environment variable,
3. the files shipped inside this package (``cnn/data/files``; only MNIST ships),
4. the per-user cache, ``$XDG_CACHE_HOME/cnn`` or ``~/.cache/cnn``,
5. ``/usr/share/datasets`` (Debian's ``dataset-fashion-mnist`` installs
   ``/usr/share/datasets/fashion-mnist/*-ubyte.gz``).

A ``data_dir`` or ``CNN_DATA_DIR`` that is not an existing directory is an error, never skipped.

In each, the files may lie directly or in a folder named after the dataset (``mnist``,
``fashion-mnist``, ``cifar-10-batches-py``...; torchvision's ``MNIST/raw`` also works), IDX
files gzip-compressed or not. Every file's MD5 is compared with the published one. Directories
the user chose (1, 2) may hold custom data, so a mismatch there only marks the dataset
unverified; in the directories this package manages (3-5) it is an error. A file whose MD5 is
that of *another* dataset (MNIST found where Fashion-MNIST was asked for) is always an error.

When nothing is found, the files are downloaded into ``data_dir``, else ``CNN_DATA_DIR``, else
the cache: into a temporary file in the same directory, verified, then renamed, so a failed or
interrupted download never leaves a partial file. Archives are checked member by member before
anything is extracted, extracted into a temporary directory and then renamed into place.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.error import URLError
from urllib.request import urlopen  # module attribute, so tests can replace it

from cnn.errors import DataError

TIMEOUT = 20.0  # seconds per network operation: fail fast and say where to put the files
MAX_DOWNLOAD = 512 << 20  # no official file is near this; a runaway response is cut off
_CHUNK = 1 << 20
PACKAGE_DIR = Path(__file__).resolve().parent / "files"
SYSTEM_DIR = Path("/usr/share/datasets")
ENV_VAR = "CNN_DATA_DIR"


@dataclass(frozen=True)
class Source:
    """Where one dataset's files come from and how to recognise them.

    ``files`` maps each file name to its published MD5: of the decompressed bytes for IDX
    files (``gzip=True``: found as ``name`` or ``name.gz``, downloaded as ``name.gz``), of the
    file itself otherwise. ``folders`` are the sub-folder names accepted inside a search
    directory; downloads go to the first. ``mirrors`` are base URLs tried in order; with an
    ``archive``, the URL is mirror + archive and the archive must match ``archive_md5``.
    """

    title: str
    folders: tuple[str, ...]
    files: dict[str, str]
    mirrors: tuple[str, ...]
    gzip: bool = False
    archive: str | None = None
    archive_md5: str | None = None


SOURCES: dict[str, Source] = {
    "mnist": Source(
        "MNIST", ("mnist", "MNIST/raw"),
        {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
         "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
         "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
         "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"},
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/"), gzip=True),
    "fashion_mnist": Source(
        "Fashion-MNIST", ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
        {"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
         "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
         "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
         "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"},
        # The S3 website endpoint has no HTTPS; the MD5 check still protects its content.
        ("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
         "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"), gzip=True),
    "cifar10": Source(
        "CIFAR-10", ("cifar-10-batches-py",),
        {"data_batch_1": "c99cafc152244af753f735de768cd75f",
         "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
         "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
         "data_batch_4": "634d18415352ddfa80567beed471001a",
         "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
         "test_batch": "40351d587109b95175f43aff81a1287e",
         "batches.meta": "5ff9c542aee3614f3951f8cda6e48888"},
        ("https://www.cs.toronto.edu/~kriz/",),
        archive="cifar-10-python.tar.gz", archive_md5="c58f30108f718f92721af3b95e74349a"),
    "cifar100": Source(
        "CIFAR-100", ("cifar-100-python",),
        {"train": "16019d7e3df5f24257cddd939b257f8d",
         "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
         "meta": "7973b15100ade9c7d40fb424638fde48"},
        ("https://www.cs.toronto.edu/~kriz/",),
        archive="cifar-100-python.tar.gz", archive_md5="eb9058c3a382ffc7106e4002c42a8d85"),
}


@dataclass(frozen=True)
class Located:
    """A dataset's files on disk: ``files`` maps each official name to its path (which may
    end in ``.gz``); ``verified`` is True when every file matched its published MD5."""

    directory: Path
    files: dict[str, Path]
    verified: bool


def cache_dir() -> Path:
    """The per-user download cache: ``$XDG_CACHE_HOME/cnn``, else ``~/.cache/cnn``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnn"


def search_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, bool]]:
    """The directories searched, in order, each with whether checksums are enforced there."""
    named = [("data_dir", data_dir), (ENV_VAR, os.environ.get(ENV_VAR))]
    roots = [(_named_directory(key, value), False) for key, value in named if value]
    return roots + [(PACKAGE_DIR, True), (cache_dir(), True), (SYSTEM_DIR, True)]


def _named_directory(key: str, value: str | os.PathLike) -> Path:
    """A directory the user named must be one: falling back to the packaged or cached copy
    instead would train on data the user did not ask for."""
    path = Path(value)
    if not path.exists():
        raise DataError(f"{key} {path} does not exist; create it (downloads go there) or "
                        f"leave {key} out")
    if not path.is_dir():
        raise DataError(f"{key} {path} is not a directory; name the folder holding the dataset")
    return path


def content_md5(path: str | os.PathLike, gunzip: bool = True) -> str:
    """MD5 of a file's content, decompressed first when it is gzip and ``gunzip`` (published
    IDX MD5s are of the raw files; re-compressed copies differ in their ``.gz`` bytes only).
    Archives are published with the MD5 of their compressed bytes: ``gunzip=False``."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        compressed = gunzip and f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"cannot read {path}: {error}; delete it and fetch it again") from error
    return digest.hexdigest()


def _find(directory: Path, source: Source) -> dict[str, Path] | None:
    found = {}
    for name in source.files:
        options = (name, name + ".gz") if source.gzip else (name,)
        path = next((directory / o for o in options if (directory / o).is_file()), None)
        if path is None:
            return None
        found[name] = path
    return found


# content_md5 of files found on disk, by what identifies one version of a file: a fit finds
# its dataset more than once (prepare_data, then setup), and a process that runs several
# commands (the tests) many times; a file written again gets a new mtime, so a new entry.
_FOUND_MD5: dict[tuple, str] = {}


def _found_md5(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _FOUND_MD5:
        _FOUND_MD5[key] = content_md5(path)
    return _FOUND_MD5[key]


def _verify(source: Source, files: dict[str, Path], strict: bool) -> bool:
    others = {md5: (s.title, f) for s in SOURCES.values() if s is not source
              for f, md5 in s.files.items()}
    verified = True
    for name, path in files.items():
        actual, expected = _found_md5(path), source.files[name]
        if actual == expected:
            continue
        if actual in others:
            title, other = others[actual]
            raise DataError(f"{path} is {title}'s {other}, not {source.title}'s {name}; keep "
                            f"each dataset in its own folder ({source.folders[0]}/ for this one)")
        if strict:
            raise DataError(f"{path} has MD5 {actual}, expected {expected} for {source.title}'s "
                            f"{name}: the file is damaged; delete it and run again")
        verified = False
    return verified


def locate(name: str, data_dir: str | os.PathLike | None = None,
           download: bool = True) -> Located:
    """Find dataset ``name`` (a key of ``SOURCES``), downloading it if allowed and needed.

    Raises ``DataError`` (one line listing the files and the directories searched) when the
    files are absent and cannot be downloaded, and when a file fails its checksum.
    """
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(SOURCES)}")
    source = SOURCES[name]
    roots = search_roots(data_dir)
    for root, strict in roots:
        for directory in (root, *(root / f for f in source.folders)):
            files = _find(directory, source)
            if files is not None:
                return Located(directory, files, _verify(source, files, strict))
    target = Path(data_dir or os.environ.get(ENV_VAR) or cache_dir())
    if not download:
        raise DataError(_missing(source, roots, target, "downloading is off"))
    directory = target / source.folders[0]
    try:
        created = _make_dirs(target if source.archive else directory)
    except OSError as error:
        raise DataError(f"cannot create {directory} to download {source.title} into "
                        f"({error}); pass a writable data_dir") from error
    try:
        if source.archive:
            _fetch_archive(source, target)
        else:
            _fetch_files(source, directory)
    except _DownloadFailed as failure:
        raise DataError(_missing(source, roots, target, f"download failed: {failure}")) from None
    except OSError as error:  # e.g. renaming into place on a full or read-only disk
        raise DataError(f"cannot write {source.title} into {target}: {error}; free some "
                        "space or pass a writable data_dir") from error
    except DataError:
        # Another process (say, another rank) may have completed the same download first.
        if _find(directory, source) is None:
            raise
    finally:
        _remove_empty(created)
    files = _find(directory, source)
    if files is None:  # pragma: no cover - an archive without the expected files
        raise DataError(_missing(source, roots, target, "the download lacked some files"))
    return Located(directory, files, _verify(source, files, strict=True))


def _missing(source: Source, roots, target: Path, why: str) -> str:
    names = ", ".join(n + (".gz" if source.gzip else "") for n in source.files)
    where = ", ".join(str(r) for r, _ in roots)
    archive = (f", or put {source.archive} (from {source.mirrors[0]}) in {target}"
               if source.archive else "")
    return (f"{source.title} not found ({why}): put {names} in {target / source.folders[0]}"
            f"{archive} (searched {where}, each directly and in a '{source.folders[0]}' "
            "folder; CNN_DATA_DIR or data_dir adds a directory)")


class _DownloadFailed(Exception):
    """Every mirror failed for network reasons (a checksum mismatch is a DataError)."""


def _make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and missing parents; return those created, deepest first."""
    created, p = [], path
    while not p.exists():
        created.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:
        try:
            d.rmdir()  # only succeeds when empty: a failed download leaves no trace
        except OSError:
            break


def _download(url: str, directory: Path, label: str) -> Path:
    """Stream ``url`` into a new temporary file in ``directory`` and return its path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{label}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=TIMEOUT) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with _progress(total, label) as bar:
                size = 0
                while chunk := response.read(_CHUNK):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD:
                        raise OSError(f"response exceeds {MAX_DOWNLOAD} bytes")
                    out.write(chunk)
                    bar.update(len(chunk))
        return Path(tmp)
    except BaseException:
        os.unlink(tmp)
        raise


def _progress(total: int | None, label: str):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with lightning
        return _NoBar()
    # disable=None: a bar on a terminal, silence in logs and tests.
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                disable=None, leave=False)


class _NoBar:  # pragma: no cover
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def _fetch_verified(urls: list[str], directory: Path, final: Path, expected: str,
                    gunzip: bool = True) -> None:
    """Download the first URL whose content has MD5 ``expected`` and rename it to ``final``."""
    failures, mismatch = [], None
    for url in urls:
        try:
            tmp = _download(url, directory, final.name)
        except (OSError, URLError, http.client.HTTPException, ValueError) as error:
            failures.append(f"{url}: {error}")
            continue
        try:
            actual = content_md5(tmp, gunzip)
            if actual == expected:
                os.replace(tmp, final)
                return
            mismatch = DataError(f"downloaded {final.name} from {url} has MD5 {actual}, "
                                 f"expected {expected}; nothing was kept, try again later or "
                                 f"put the official file at {final}")
        except DataError as error:  # not even readable (e.g. a broken gzip stream)
            mismatch = error
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    if mismatch is not None:
        raise mismatch
    raise _DownloadFailed("; ".join(failures))


def _fetch_files(source: Source, directory: Path) -> None:
    for name, md5 in source.files.items():
        if not (directory / name).is_file() and not (directory / (name + ".gz")).is_file():
            _fetch_verified([m + name + ".gz" for m in source.mirrors], directory,
                            directory / (name + ".gz"), md5)


def _fetch_archive(source: Source, root: Path) -> None:
    folder = root / source.folders[0]
    if folder.exists():
        raise DataError(f"{folder} exists but lacks some of {', '.join(source.files)}; "
                        "complete it, or delete it so it is downloaded again")
    archive = root / source.archive
    if archive.is_file():  # put there by hand, e.g. on a machine without network
        actual = content_md5(archive, gunzip=False)
        if actual != source.archive_md5:
            raise DataError(f"{archive} has MD5 {actual}, expected {source.archive_md5}; "
                            "delete it and run again")
        extract_tar(archive, root)
        return
    _fetch_verified([m + source.archive for m in source.mirrors], root, archive,
                    source.archive_md5, gunzip=False)
    try:
        extract_tar(archive, root)
    finally:
        archive.unlink()  # the extracted files are what is kept


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or "\\" in member.name:
        raise DataError(f"refusing to extract {archive}: member {member.name!r} would land "
                        "outside the target directory; delete the archive")
    if not (member.isreg() or member.isdir()):
        raise DataError(f"refusing to extract {archive}: member {member.name!r} is a link or "
                        "special file, which no dataset archive needs; delete the archive")


def extract_tar(archive: str | os.PathLike, destination: str | os.PathLike) -> list[Path]:
    """Safely extract a (compressed) tar archive into ``destination``; return what it added.

    Every member is checked first (no absolute paths, no ``..``, only regular files and
    directories), so a hostile archive is refused with nothing extracted. Extraction goes
    into a temporary directory inside ``destination`` (with tarfile's ``data`` filter where
    Python has it) and each top-level entry is then renamed into place; entries that already
    exist are not overwritten.
    """
    archive, destination = Path(archive), Path(destination)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            tops = sorted({PurePosixPath(m.name).parts[0] for m in members
                           if PurePosixPath(m.name).parts})
            for top in tops:
                if (destination / top).exists():
                    raise DataError(f"{destination / top} already exists; remove it to "
                                    f"extract {archive} again")
            tmp = Path(tempfile.mkdtemp(prefix=".extract.", dir=destination))
            try:
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **kwargs)
                for top in tops:
                    os.replace(tmp / top, destination / top)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(f"cannot extract {archive}: {error}; delete it and download it "
                        "again") from error
    return [destination / top for top in tops]
