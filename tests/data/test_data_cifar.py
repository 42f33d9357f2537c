"""CIFAR files: the official layout, channel order proven on real images, hostile pickles."""

from __future__ import annotations

import builtins
import os
import pickle
import pickletools
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn.data import DataError, load_dataset, read_cifar10, read_cifar100, write_cifar10, write_cifar100
from cnn.data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES, _dump, load_pickle


def random_images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def real_images(folder: Path):
    """The real test-set PNGs and their labels, in file order (= test-set order)."""
    files = sorted(folder.glob("*.png"))
    assert len(files) == 20
    images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    labels = np.array([int(re.match(r".*_(\d+)_(\d+)\.png", f.name)[2]) for f in files])
    return images, labels


def official_rows(images):
    """Pack images the way the official files do, spelled out: per image, the 1024 red
    values row by row, then the 1024 green, then the 1024 blue."""
    return np.stack([np.concatenate([img[:, :, c].ravel() for c in range(3)])
                     for img in images]).astype(np.uint8)


def test_cifar10_in_the_official_layout_reads_back(tmp_path):
    train, test = random_images(23, 1), random_images(7, 2)
    train_labels, test_labels = np.arange(23) % 10, np.arange(7)[::-1]
    out = write_cifar10(tmp_path, train, train_labels, test, test_labels)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"])
    data = read_cifar10(out)
    np.testing.assert_array_equal(data.train_images, train)
    np.testing.assert_array_equal(data.test_images, test)
    assert data.train_labels.tolist() == train_labels.tolist()
    assert data.test_labels.dtype == np.int64 and data.test_labels.tolist() == [6, 5, 4, 3, 2, 1, 0]
    assert data.label_names == CIFAR10_CLASSES and len(data.label_names) == 10


def test_written_files_have_the_official_keys_and_python2_encoding(tmp_path):
    out = write_cifar10(tmp_path, random_images(5), np.arange(5), random_images(1), [3])
    raw = (out / "data_batch_1").read_bytes()
    ops = {op.name for op, _, _ in pickletools.genops(raw)}
    assert raw[:2] == b"\x80\x02"  # protocol 2, like cPickle wrote them
    assert "SHORT_BINSTRING" in ops and not {"BINBYTES", "SHORT_BINBYTES", "BINUNICODE"} & ops
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    batch = load_pickle(out / "data_batch_1")
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].shape == (1, 3072) and batch[b"batch_label"] == b"training batch 1 of 5"
    assert set(load_pickle(out / "batches.meta")) == {b"num_cases_per_batch", b"label_names",
                                                      b"num_vis"}


def test_cifar100_fine_and_coarse_labels_read_back(tmp_path):
    train, test = random_images(6), random_images(3, 1)
    out = write_cifar100(tmp_path, train, [0, 99, 5, 6, 7, 8], test, [1, 2, 3],
                         train_coarse=[19, 0, 1, 2, 3, 4], test_coarse=[5, 6, 7])
    batch = load_pickle(out / "train")
    assert set(batch) == {b"batch_label", b"fine_labels", b"coarse_labels", b"data", b"filenames"}
    data = read_cifar100(out)
    np.testing.assert_array_equal(data.train_images, train)
    assert data.train_labels.tolist() == [0, 99, 5, 6, 7, 8]
    assert data.coarse_train_labels.tolist() == [19, 0, 1, 2, 3, 4]
    assert data.coarse_test_labels.tolist() == [5, 6, 7]
    assert data.label_names == CIFAR100_CLASSES and len(data.coarse_label_names) == 20


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_rows_keep_channel_order(tmp_path, shared_data, dataset):
    images, labels = real_images(shared_data / f"{dataset}-test-first20")
    if dataset == "cifar10":
        out = write_cifar10(tmp_path, images, labels, images, labels)
        batch = {b"batch_label": b"testing batch 1 of 1", b"labels": labels.tolist(),
                 b"data": official_rows(images), b"filenames": [b"x.png"] * 20}
        _dump(out / "test_batch", batch)
        got = read_cifar10(out)
    else:
        out = write_cifar100(tmp_path, images, labels, images, labels)
        batch = {b"batch_label": b"testing batch 1 of 1", b"fine_labels": labels.tolist(),
                 b"coarse_labels": [0] * 20, b"data": official_rows(images),
                 b"filenames": [b"x.png"] * 20}
        _dump(out / "test", batch)
        got = read_cifar100(out)
    np.testing.assert_array_equal(got.test_images, images)
    assert got.test_labels.tolist() == labels.tolist()
    np.testing.assert_array_equal(got.train_images, images)  # the writer agrees with the spec
    # The reference bug (reshape without the transpose) would not survive this test:
    assert not np.array_equal(official_rows(images).reshape(20, 32, 32, 3), images)


def test_real_first_test_images_have_their_known_classes(tmp_path, shared_data):
    images, labels = real_images(shared_data / "cifar10-test-first20")
    data = load_dataset("cifar10", data_dir=write_cifar10(tmp_path, images, labels, images,
                                                          labels).parent, download=False)
    assert [data.spec.classes[i] for i in data.test.labels[:4]] == ["cat", "ship", "ship",
                                                                    "airplane"]
    assert data.spec.num_classes == 10 and data.test.images.shape == (20, 32, 32, 3)
    assert not data.verified  # custom files in a directory the user chose


def test_reader_also_accepts_pickles_written_by_numpy_2(tmp_path):
    out = write_cifar10(tmp_path, random_images(5), np.arange(5), random_images(2), [0, 1])
    images = random_images(2, 9)
    with open(out / "test_batch", "wb") as f:
        pickle.dump({b"data": official_rows(images), b"labels": [4, 2]}, f, protocol=4)
    np.testing.assert_array_equal(read_cifar10(out).test_images, images)


def test_meta_names_are_authoritative(tmp_path):
    names = tuple(f"class{i}" for i in range(10))
    out = write_cifar10(tmp_path, random_images(5), np.arange(5), random_images(1), [0],
                        label_names=names)
    assert load_dataset("cifar10", data_dir=out, download=False).spec.classes == names


class _Evil:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


@pytest.mark.parametrize("how", ["os.system", "builtins.eval"])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, how):
    marker = tmp_path / "pwned"
    evil = (_Evil(os.system, f"touch {marker}") if how == "os.system"
            else _Evil(builtins.eval, f"open({str(marker)!r}, 'w').close()"))
    out = write_cifar10(tmp_path, random_images(5), np.arange(5), random_images(1), [0])
    (out / "data_batch_1").write_bytes(pickle.dumps({b"data": evil, b"labels": [0]}, protocol=2))
    with pytest.raises(DataError, match=r"^refusing to load .*data_batch_1") as error:
        read_cifar10(out)
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="refusing"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert not marker.exists()


@pytest.mark.parametrize("change, message", [
    (lambda b: b.update({b"labels": [0, 10]}), "outside 0..9"),
    (lambda b: b.update({b"labels": [0]}), "should be 2 integers"),
    (lambda b: b.update({b"data": np.zeros((2, 3071), np.uint8)}), "rows of 3072"),
    (lambda b: b.update({b"data": np.zeros((2, 3072), np.int32)}), "uint8 rows"),
    (lambda b: b.pop(b"labels"), "no 'labels' entry"),
])
def test_inconsistent_batches_are_data_errors(tmp_path, change, message):
    out = write_cifar10(tmp_path, random_images(5), np.arange(5), random_images(2), [0, 1])
    batch = load_pickle(out / "test_batch")
    change(batch)
    _dump(out / "test_batch", batch)
    with pytest.raises(DataError, match=message):
        read_cifar10(out)


def test_damaged_pickle_is_a_data_error(tmp_path):
    out = write_cifar10(tmp_path, random_images(5), np.arange(5), random_images(2), [0, 1])
    path = out / "test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="cannot read .*test_batch"):
        read_cifar10(out)


def test_official_files_must_have_the_official_counts(tmp_path):
    out = write_cifar10(tmp_path, random_images(10), np.arange(10), random_images(2), [0, 1])
    read_cifar10(out)  # small custom data is fine ...
    with pytest.raises(DataError, match="official file 10000"):
        read_cifar10(out, official=True)  # ... but not when the checksums claimed official


def test_wrong_number_of_class_names_is_a_data_error(tmp_path):
    out = write_cifar10(tmp_path, random_images(5), np.arange(5), random_images(1), [0],
                        label_names=CIFAR10_CLASSES[:3])
    with pytest.raises(DataError, match="lists 3 classes, expected 10"):
        read_cifar10(out)


def test_tiny_datasets_with_empty_batch_files_read_back(tmp_path):
    train = random_images(3)
    data = read_cifar10(write_cifar10(tmp_path, train, [1, 2, 3], random_images(1), [9]))
    np.testing.assert_array_equal(data.train_images, train)
    assert data.train_labels.tolist() == [1, 2, 3] and data.test_labels.tolist() == [9]
