"""IDX reading: the real MNIST / Fashion-MNIST files, and every way a file can be damaged."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from cnn.data import DataError, load_dataset, read_idx, read_idx_pair, write_idx
from cnn.data.idx import IMAGES_MAGIC, LABELS_MAGIC

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)


def test_real_mnist_has_the_published_shapes_and_label_counts(mnist):
    assert mnist.verified
    assert mnist.train.images.shape == (60000, 28, 28, 1)
    assert mnist.test.images.shape == (10000, 28, 28, 1)
    assert mnist.train.images.dtype == np.uint8 and mnist.train.labels.dtype == np.int64
    assert np.bincount(mnist.train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.test.labels).tolist() == MNIST_TEST_COUNTS
    assert mnist.test.labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_real_fashion_mnist_is_read_and_verified(shared_data):
    data = load_dataset("fashion_mnist", data_dir=shared_data / "fashion-mnist", download=False)
    assert data.verified and data.spec.classes[9] == "Ankle boot"
    assert data.train.images.shape == (60000, 28, 28, 1)
    assert np.bincount(data.train.labels).tolist() == [6000] * 10
    assert np.bincount(data.test.labels).tolist() == [1000] * 10


def test_loaded_images_are_writable_arrays(mnist):
    assert mnist.train.images.flags.writeable and mnist.train.images.flags.c_contiguous


@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_idx_files_round_trip_raw_or_gzip(tmp_path, images, name):
    path = write_idx(tmp_path / name, images)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    np.testing.assert_array_equal(read_idx(path, IMAGES_MAGIC), images)


def test_gzip_is_detected_from_content_not_name(tmp_path, images):
    path = tmp_path / "plain-name"
    path.write_bytes(gzip.compress((write_idx(tmp_path / "raw", images)).read_bytes()))
    np.testing.assert_array_equal(read_idx(path), images)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_idx_file_is_a_data_error(tmp_path, images, compress):
    raw = write_idx(tmp_path / "full", images).read_bytes()[:-7]
    path = tmp_path / "cut"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_truncated_header_is_a_data_error(tmp_path, images):
    path = tmp_path / "cut"
    path.write_bytes(write_idx(tmp_path / "full", images).read_bytes()[:9])
    with pytest.raises(DataError, match="truncated inside its IDX header"):
        read_idx(path)


def test_trailing_bytes_are_a_data_error(tmp_path, images):
    path = write_idx(tmp_path / "x", images)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(DataError, match="past the"):
        read_idx(path)


def test_wrong_magic_is_a_data_error_naming_the_file(tmp_path, images):
    path = write_idx(tmp_path / "images", images)
    with pytest.raises(DataError, match="magic 0x00000803, expected 0x00000801") as error:
        read_idx(path, LABELS_MAGIC)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("head", [b"\x00\x00\x0d\x01", b"PK\x03\x04", b"", b"\x00\x00\x08\x00"])
def test_non_idx_or_non_byte_files_are_refused(tmp_path, head):
    path = tmp_path / "bad"
    path.write_bytes(head + b"\x00\x00\x00\x01\x00")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_a_header_claiming_huge_sizes_fails_fast_without_allocating(tmp_path):
    path = tmp_path / "liar"
    path.write_bytes(bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 3 + b"\1\2\3")
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_corrupt_gzip_stream_is_a_data_error(tmp_path, images):
    data = bytearray(gzip.compress(write_idx(tmp_path / "x", images).read_bytes()))
    data[20:30] = b"\xff" * 10
    path = tmp_path / "broken.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=str(path)):
        read_idx(path)


def test_image_and_label_counts_must_agree(tmp_path, images):
    image_path = write_idx(tmp_path / "images", images)
    label_path = write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        read_idx_pair(image_path, label_path)


def test_pairs_come_out_nhwc_with_int64_labels(tmp_path, images):
    got_images, got_labels = read_idx_pair(write_idx(tmp_path / "i.gz", images),
                                           write_idx(tmp_path / "l", np.arange(5, dtype=np.uint8)))
    assert got_images.shape == (5, 4, 3, 1) and got_labels.dtype == np.int64
    assert got_labels.tolist() == [0, 1, 2, 3, 4]


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope")
