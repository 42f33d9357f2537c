"""Finding, downloading, verifying and extracting dataset files, hermetically (no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from cnn.data import (
    DataError,
    extract_tar,
    fetch,
    load_dataset,
    locate,
    read_cifar10,
    read_idx,
    write_cifar10,
    write_idx,
)

IDX_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Every search root inside tmp_path, and a network that always fails."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNN_DATA_DIR", raising=False)
    monkeypatch.setattr(fetch, "PACKAGE_DIR", tmp_path / "package")
    monkeypatch.setattr(fetch, "SYSTEM_DIR", tmp_path / "system")

    def offline(url, timeout=None):
        raise URLError("network disabled in tests")

    monkeypatch.setattr(fetch, "urlopen", offline)
    return tmp_path


def fake_idx(directory: Path, gz: bool = True, n_train: int = 12, n_test: int = 5) -> dict:
    """A small MNIST-shaped dataset; returns each file's content MD5."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n_train)
    arrays = [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              (np.arange(n_train) % 10).astype(np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              (np.arange(n_test) % 10).astype(np.uint8)]
    md5s = {}
    for name, array in zip(IDX_NAMES, arrays):
        write_idx(directory / (name + ".gz" if gz else name), array)
        md5s[name] = fetch.content_md5(directory / (name + ".gz" if gz else name))
    return md5s


def use_source(monkeypatch, name, **changes):
    monkeypatch.setitem(fetch.SOURCES, name, dataclasses.replace(fetch.SOURCES[name], **changes))


def tree(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_lookup_order_is_data_dir_env_package_cache_then_system(home, monkeypatch):
    roots = [home / "data", home / "env", home / "package", home / "cache" / "cnn",
             home / "system"]
    for root in roots:
        md5s = fake_idx(root / "mnist")
    use_source(monkeypatch, "mnist", files=md5s)
    monkeypatch.setenv("CNN_DATA_DIR", str(home / "env"))
    for root in roots:
        assert locate("mnist", data_dir=home / "data").directory == root / "mnist"
        for f in (root / "mnist").iterdir():
            f.unlink()


def test_debian_fashion_mnist_layout_is_found(home, shared_data):
    # dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist/<name>-ubyte.gz
    debian = home / "system" / "fashion-mnist"
    debian.mkdir(parents=True)
    for name in IDX_NAMES:
        (debian / (name + ".gz")).symlink_to(shared_data / "fashion-mnist" / (name + ".gz"))
    found = locate("fashion_mnist", download=False)
    assert found.directory == debian and found.verified


def test_shipped_mnist_is_found_and_matches_the_published_checksums(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CNN_DATA_DIR", raising=False)
    found = locate("mnist", download=False)
    assert found.directory == fetch.PACKAGE_DIR / "mnist" and found.verified
    assert (fetch.PACKAGE_DIR / "mnist" / "ATTRIBUTION.md").is_file()


@pytest.mark.parametrize("folder, gz", [("", True), ("mnist", False), ("MNIST/raw", True)])
def test_files_may_lie_flat_or_in_a_dataset_folder_raw_or_gzip(home, folder, gz):
    fake_idx(home / "data" / folder, gz=gz)
    data = load_dataset("mnist", data_dir=home / "data", download=False)
    assert data.source == home / "data" / folder
    assert data.train.images.shape == (12, 28, 28, 1) and len(data.test) == 5


def test_custom_data_in_a_chosen_directory_loads_unverified(home):
    fake_idx(home / "data" / "mnist")
    data = load_dataset("mnist", data_dir=home / "data", download=False)
    assert not data.verified and data.train.labels.tolist()[:3] == [0, 1, 2]


def test_mnist_found_where_fashion_mnist_is_asked_is_refused(home, shared_data):
    flat = home / "data"
    flat.mkdir()
    for name in IDX_NAMES:
        (flat / (name + ".gz")).symlink_to(shared_data / "mnist" / (name + ".gz"))
    with pytest.raises(DataError, match="is MNIST's train-images-idx3-ubyte, not Fashion-MNIST"):
        locate("fashion_mnist", data_dir=flat, download=False)


def test_damaged_file_in_a_managed_directory_is_a_checksum_error(home):
    md5s = fake_idx(home / "cache" / "cnn" / "mnist")
    with pytest.raises(DataError) as error:
        locate("mnist", download=False)
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz" in message and md5s["train-images-idx3-ubyte"] in message
    assert "expected 6bbc9ace898e44ae57da46a324031adb" in message


def test_missing_files_with_download_failing_say_in_one_line_where_to_put_them(home):
    (home / "data").mkdir()
    with pytest.raises(DataError) as error:
        load_dataset("fashion_mnist", data_dir=home / "data")
    message = str(error.value)
    assert "\n" not in message and "download failed" in message
    assert "network disabled in tests" in message
    for needed in [*(n + ".gz" for n in IDX_NAMES), str(home / "data"),
                   str(home / "cache" / "cnn"), str(home / "system"), "'fashion-mnist' folder",
                   f"in {home / 'data' / 'fashion-mnist'} "]:
        assert needed in message
    assert tree(home / "data") == []  # not even the empty folder the download would have used


def test_download_off_never_touches_the_network(home, monkeypatch):
    def forbidden(url, timeout=None):
        raise AssertionError("network used")

    monkeypatch.setattr(fetch, "urlopen", forbidden)
    with pytest.raises(DataError, match="downloading is off"):
        locate("cifar10", download=False)
    assert not (home / "cache").exists()


@pytest.fixture
def mirror(home, monkeypatch):
    """A file:// mirror holding a small fake MNIST, served by the real urlopen."""
    monkeypatch.setattr(fetch, "urlopen", urllib.request.urlopen)
    md5s = fake_idx(home / "mirror")
    return home / "mirror", md5s


def test_download_is_verified_and_renamed_into_place(home, mirror, monkeypatch):
    served, md5s = mirror
    use_source(monkeypatch, "mnist", files=md5s,
               mirrors=("file:///nonexistent/mirror/", served.as_uri() + "/"))
    # locate, not load_dataset: verified files must also have the official sizes.
    found = locate("mnist")
    assert found.verified and found.directory == home / "cache" / "cnn" / "mnist"
    assert tree(found.directory) == sorted(n + ".gz" for n in IDX_NAMES)
    for name in IDX_NAMES:
        assert read_idx(found.files[name]).tobytes() == read_idx(served / (name + ".gz")).tobytes()


def test_corrupt_download_is_a_data_error_and_leaves_no_file(home, mirror, monkeypatch):
    served, md5s = mirror  # fake files, but the published (real) MD5s stay in place
    use_source(monkeypatch, "mnist", mirrors=(served.as_uri() + "/",))
    (home / "data").mkdir()
    with pytest.raises(DataError) as error:
        locate("mnist", data_dir=home / "data")
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz" in message and md5s["train-images-idx3-ubyte"] in message
    assert "expected 6bbc9ace898e44ae57da46a324031adb" in message
    assert tree(home / "data") == []


class _CutResponse:
    """A response that dies halfway, like a dropped connection."""

    headers = {"Content-Length": "1000"}

    def __init__(self):
        self.sent = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size=-1):
        if self.sent:
            raise ConnectionResetError("connection reset by peer")
        self.sent = True
        return b"\x1f\x8b" + bytes(100)


def test_interrupted_download_leaves_no_partial_file(home, monkeypatch):
    monkeypatch.setattr(fetch, "urlopen", lambda url, timeout=None: _CutResponse())
    with pytest.raises(DataError, match="connection reset by peer"):
        locate("mnist")
    assert not (home / "cache").exists()


def make_cifar_archive(path: Path, source_root: Path) -> str:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source_root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar_mirror(home, monkeypatch):
    images = np.random.default_rng(3).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    out = write_cifar10(home / "src", images, np.arange(10), images[:4], np.arange(4))
    (home / "mirror").mkdir()
    archive_md5 = make_cifar_archive(home / "mirror" / "cifar-10-python.tar.gz", home / "src")
    files = {p.name: fetch.content_md5(p) for p in out.iterdir()}
    use_source(monkeypatch, "cifar10", files=files, archive_md5=archive_md5,
               mirrors=((home / "mirror").as_uri() + "/",))
    monkeypatch.setattr(fetch, "urlopen", urllib.request.urlopen)
    return images


def test_cifar_archive_is_downloaded_verified_and_extracted(home, cifar_mirror):
    found = locate("cifar10")
    assert found.verified and found.directory == home / "cache" / "cnn" / "cifar-10-batches-py"
    np.testing.assert_array_equal(read_cifar10(found.directory).train_images, cifar_mirror)
    assert [p.name for p in (home / "cache" / "cnn").iterdir()] == ["cifar-10-batches-py"]


def test_cifar_archive_with_a_wrong_checksum_is_refused_and_nothing_kept(home, cifar_mirror,
                                                                        monkeypatch):
    use_source(monkeypatch, "cifar10", archive_md5="0" * 32)
    with pytest.raises(DataError, match="cifar-10-python.tar.gz .* expected 0{32}"):
        load_dataset("cifar10")
    assert not (home / "cache").exists()


def test_archive_put_there_by_hand_is_extracted_without_network(home, cifar_mirror,
                                                                monkeypatch):
    monkeypatch.setattr(fetch, "urlopen", None)  # any network use would fail loudly
    (home / "data").mkdir()
    (home / "mirror" / "cifar-10-python.tar.gz").rename(home / "data" / "cifar-10-python.tar.gz")
    found = locate("cifar10", data_dir=home / "data")
    assert found.verified and len(read_cifar10(found.directory).test_images) == 4


def test_incomplete_extracted_folder_is_reported_not_overwritten(home, cifar_mirror):
    partial = home / "cache" / "cnn" / "cifar-10-batches-py"
    partial.mkdir(parents=True)
    (partial / "data_batch_1").write_bytes(b"mine")
    with pytest.raises(DataError, match="exists but lacks"):
        load_dataset("cifar10")
    assert tree(partial) == ["data_batch_1"]


def _member(name, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("bad", [
    _member("../evil"),
    _member("/tmp/evil-absolute"),
    _member("ok/../../evil"),
    _member("ok/link", tarfile.SYMTYPE, "/etc/passwd"),
    _member("ok/hard", tarfile.LNKTYPE, "ok/file"),
    _member("ok/device", tarfile.CHRTYPE),
    _member("ok/fifo", tarfile.FIFOTYPE),
], ids=["parent", "absolute", "nested-parent", "symlink", "hardlink", "device", "fifo"])
def test_tar_with_unsafe_members_is_refused_and_nothing_extracted(tmp_path, bad):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(_member("ok/file"), io.BytesIO(b"good"))
        tar.addfile(bad, io.BytesIO(b"evil") if bad.isreg() else None)
    destination = tmp_path / "out" / "deeper"
    destination.mkdir(parents=True)
    with pytest.raises(DataError, match="refusing to extract"):
        extract_tar(archive, destination)
    assert tree(tmp_path / "out") == ["deeper"]
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not Path("/tmp/evil-absolute").exists()


def test_safe_tar_is_extracted_atomically(tmp_path):
    archive = tmp_path / "good.tar"
    with tarfile.open(archive, "w") as tar:
        tar.addfile(_member("top/a"), io.BytesIO(b"aaaa"))
    assert extract_tar(archive, tmp_path) == [tmp_path / "top"]
    assert (tmp_path / "top" / "a").read_bytes() == b"aaaa"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tar", "top"]


def test_files_claiming_official_checksums_must_have_the_official_sizes(home, monkeypatch):
    use_source(monkeypatch, "mnist", files=fake_idx(home / "data"))
    with pytest.raises(DataError, match="the official MNIST has 60000 / 10000"):
        load_dataset("mnist", data_dir=home / "data", download=False)
