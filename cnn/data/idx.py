"""Reader and writer for IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian
uint32 sizes, then the values in C order. Only unsigned bytes (type 0x08) occur in these
datasets, so only they are accepted. Files may be gzip-compressed (detected from their first
bytes, not their name) or raw.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from cnn.errors import DataError

UBYTE = 0x08
IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions: count, rows, columns
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension: count
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def _open(path: Path):
    with open(path, "rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_exact(stream, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at end of file (gzip may return short reads)."""
    parts, left = [], size
    while left > 0:
        part = stream.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes into a writable uint8 array of the header's shape.

    ``magic`` (``IMAGES_MAGIC`` or ``LABELS_MAGIC``), when given, must match the file's.
    The payload must be exactly as long as the header's sizes say: a truncated file, or one
    with trailing bytes, is damaged and raises ``DataError``, as do a wrong magic number and
    a corrupt gzip stream.
    """
    path = Path(path)
    try:
        with _open(path) as stream:
            head = _read_exact(stream, 4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] != UBYTE or head[3] == 0:
                raise DataError(f"{path} is not an IDX file of unsigned bytes (magic "
                                f"{head.hex() or 'missing'}); replace it with the original")
            found = int.from_bytes(head, "big")
            if magic is not None and found != magic:
                raise DataError(f"{path} has IDX magic 0x{found:08x}, expected 0x{magic:08x}: "
                                "it is the wrong kind of file (images vs labels); replace it")
            dims_raw = _read_exact(stream, 4 * head[3])
            if len(dims_raw) < 4 * head[3]:
                raise DataError(f"{path} is truncated inside its IDX header; download it again")
            shape = struct.unpack(f">{head[3]}I", dims_raw)
            expected = math.prod(shape)  # Python ints: a lying header cannot overflow
            # Read in chunks up to one byte past the end: a lying header cannot make us
            # allocate more than the file holds, and one extra byte reveals trailing data.
            buffer = bytearray()
            while len(buffer) <= expected:
                part = stream.read(min(_CHUNK, expected + 1 - len(buffer)))
                if not part:
                    break
                buffer += part
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise DataError(f"cannot read {path}: {error}; download or copy it again") from error
    size = "x".join(map(str, shape))
    if len(buffer) < expected:
        raise DataError(f"{path} is truncated: its header promises {size} = {expected} bytes "
                        f"of data but it holds {len(buffer)}; download or copy it again")
    if len(buffer) > expected:
        raise DataError(f"{path} has bytes past the {size} = {expected} its header promises; "
                        "it is damaged, download or copy it again")
    return np.frombuffer(buffer, dtype=np.uint8).reshape(shape)


def read_idx_pair(images_path: str | os.PathLike,
                  labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file into ``(uint8 (N, H, W, 1), int64 (N,))``.

    Checks both magic numbers and that both files hold the same number of items; the channel
    axis is added so every dataset comes out NHWC.
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels; the two files do not belong together, "
                        "replace them with a matching pair")
    return images[..., np.newaxis], labels.astype(np.int64)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file, gzip-compressed when the name ends in ``.gz``.

    Used by tests and tools to make files in the exact format the reader expects. The gzip
    header carries no timestamp, so the same array always gives the same bytes.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx needs a uint8 array of 1..255 dimensions, got "
                         f"{array.dtype} with {array.ndim}")
    path = Path(path)
    data = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
