"""The folder dataset's core: layout, conversion, the cache and bad files (no framework)."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn.data import folder
from cnn.data.datasets import get_spec, load_dataset
from cnn.data.images import load_image
from cnn.errors import ConfigError, DataError
from cnn.tools import export_pngs
from tests.cli_runs import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch) -> Path:
    """Every test gets its own user cache, so none reads what another decoded."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cnn" / "folders"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """MNIST digits written once by the documented export command: ``flat/<digit>/*.png``
    (10 per class) and ``split/{train,test}/<digit>/*.png`` (3 and 2 per class)."""
    out = tmp_path_factory.mktemp("exported")
    assert export_pngs.main([str(out / "flat"), "--per-class", "10"]) == 0
    assert export_pngs.main([str(out / "split"), "--per-class", "3", "--test-per-class", "2"]) == 0
    return out


@pytest.fixture
def tree(exported, tmp_path):
    """``tree(per_class=4, classes="012")``: a fresh copy of that many digits of those classes."""
    def make(per_class: int = 4, classes: str = "012") -> Path:
        root = tmp_path / "d"
        for name in classes:
            (root / name).mkdir(parents=True)
            for f in sorted((exported / "flat" / name).iterdir())[:per_class]:
                shutil.copyfile(f, root / name / f.name)
        return root
    return make


def load(root: Path, size: int = 28, channels: int = 1, **kwargs):
    return load_dataset("folder", root, image_size=size, channels=channels, **kwargs)


def oversized_png(path: Path, side: int = 30000) -> None:
    """A PNG whose header claims side x side pixels: over Pillow's limit before any decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


# -- layout --------------------------------------------------------------------------------
def test_classes_are_the_sorted_subfolder_names_and_hidden_entries_are_ignored(tree):
    root = tree()
    (root / "1").rename(root / "b_one")
    (root / "0").rename(root / "a_zero")
    (root / ".hidden_class").mkdir()
    (root / ".hidden_class" / "x.png").write_bytes((root / "2" / "2_00000.png").read_bytes())
    (root / "2" / ".DS_Store").write_bytes(b"junk")
    (root / "README.txt").write_text("files beside the class folders are not images of a class")
    data = load(root)
    assert data.spec.classes == ("2", "a_zero", "b_one")
    assert len(data.train) + len(data.test) == 12  # the hidden ones were never read


def test_images_are_converted_exactly_as_predict_converts_a_file(tmp_path):
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    for name in ("red", "blue"):
        (root / name).mkdir(parents=True)
        for i in range(2):  # odd sizes, modes and formats
            pixels = rng.integers(0, 255, (37, 23, 3), np.uint8)
            Image.fromarray(rng.integers(0, 255, (37, 23, 4), np.uint8), "RGBA").save(root / name / f"{i}a.png")
            Image.fromarray(rng.integers(0, 65535, (30, 30), np.uint16)).save(root / name / f"{i}g.png")
            Image.fromarray(pixels).save(root / name / f"{i}.jpg", quality=90)
            Image.fromarray(pixels).save(root / name / f"{i}.bmp")
            Image.fromarray(pixels).save(root / name / f"{i}.webp")
            frames = [Image.fromarray(rng.integers(0, 255, (19, 41), np.uint8)).convert("P") for _ in "ab"]
            frames[0].save(root / name / f"{i}.gif", save_all=True, append_images=frames[1:])
    for channels in (1, 3):
        listing, decoded = folder.load_folder(root, (16, 16, channels))
        expected = np.stack([load_image(root / f, (16, 16, channels)) for f in listing.files])
        np.testing.assert_array_equal(decoded.images, expected)
        assert len(decoded.images) == 24 and not decoded.skipped  # every format was read
    # an animated GIF is its first frame
    listing, decoded = folder.load_folder(root, (16, 16, 1))
    frames[0].save(tmp_path / "first.gif")
    frames[1].save(tmp_path / "second.gif")
    got = decoded.images[listing.files.index("blue/1.gif")]
    np.testing.assert_array_equal(got, load_image(tmp_path / "first.gif", (16, 16, 1)))
    assert not np.array_equal(got, load_image(tmp_path / "second.gif", (16, 16, 1)))


def test_export_writes_the_class_folder_tree_it_documents(exported):
    assert sorted(p.name for p in (exported / "flat").iterdir()) == [str(d) for d in range(10)]
    assert len(list((exported / "flat" / "7").glob("7_*.png"))) == 10
    assert sorted(p.name for p in (exported / "split").iterdir()) == ["test", "train"]
    assert export_pngs.folder_name("T-shirt/top") == "T-shirt_top"


def test_the_model_shape_and_class_names_are_linked_from_the_folder(tree):
    root = tree()
    spec = get_spec("folder", root, 20, 3)
    assert (spec.classes, spec.image_shape, spec.num_classes) == (("0", "1", "2"), (20, 20, 3), 3)
    assert get_spec("folder", root).image_shape == (32, 32, 3)  # the defaults


def test_train_and_test_subfolders_are_the_two_sets(exported):
    root = exported / "split"
    data = load(root)
    assert data.spec.classes == tuple(str(d) for d in range(10))
    assert (len(data.train), len(data.test)) == (30, 20)
    np.testing.assert_array_equal(np.bincount(data.test.labels), [2] * 10)


def test_without_train_and_test_a_seeded_share_is_held_out(tree):
    root = tree(10, "0123456789")
    first, again, other = load(root, seed=1), load(root, seed=1), load(root, seed=2)
    assert len(first.test) == 10 and len(first.train) == 90
    np.testing.assert_array_equal(first.test.images, again.test.images)
    assert not np.array_equal(first.test.images, other.test.images)
    assert len(load(root, test_fraction=0.3).test) == 30


# -- the cache ------------------------------------------------------------------------------
def test_an_unchanged_folder_is_read_from_the_cache(tree, user_cache):
    root = tree()
    before = load(root)
    (cached,) = user_cache.glob("*.npz")
    # New pixels under the same name, size and modification time: only a cache read keeps the old.
    image = root / "1" / "1_00000.png"
    stat = image.stat()
    image.write_bytes((root / "2" / "2_00000.png").read_bytes()[:stat.st_size].ljust(stat.st_size, b"\0"))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = load(root)
    np.testing.assert_array_equal(after.train.images, before.train.images)
    assert list(user_cache.glob("*.npz")) == [cached]


@pytest.mark.parametrize("change", ["add", "touch", "remove", "image_size", "channels"])
def test_a_changed_folder_or_shape_is_decoded_again(tree, user_cache, change):
    root = tree()
    first = load(root)
    (old,) = user_cache.glob("*.npz")
    size, channels = 28, 1
    image = root / "1" / "1_00000.png"
    if change == "add":
        (root / "1" / "new.png").write_bytes((root / "2" / "2_00000.png").read_bytes())
    elif change == "touch":  # the same bytes, rewritten later
        image.write_bytes((root / "2" / "2_00000.png").read_bytes())
        os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    elif change == "remove":
        image.unlink()
    elif change == "image_size":
        size = 16
    else:
        channels = 3
    second = load(root, size, channels)
    (new,) = user_cache.glob("*.npz")  # decoded again; the stale file of this folder is gone
    assert new != old
    assert second.train.images.shape[1:] == (size, size, channels)
    if change in ("add", "remove"):
        assert len(second.train) + len(second.test) == 12 + (1 if change == "add" else -1)
    if change == "touch":
        assert not np.array_equal(np.concatenate([second.train.images, second.test.images]),
                                  np.concatenate([first.train.images, first.test.images]))


def test_a_damaged_cache_file_is_decoded_again(tree, user_cache):
    root = tree()
    first = load(root)
    (cached,) = user_cache.glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:100])
    np.testing.assert_array_equal(load(root).train.images, first.train.images)
    assert cached.stat().st_size > 100


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_run(tree, tmp_path):
    # a size limit on written files makes every cache write fail part-way (a full disk)
    root = tree()
    cache = tmp_path / "cache"
    code = ("import resource, signal, sys; from cnn.data.datasets import load_dataset; "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)); "
            f"d = load_dataset('folder', {str(root)!r}, image_size=28, channels=1); "
            "print(len(d.train) + len(d.test))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "XDG_CACHE_HOME": str(cache)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "12"
    assert "warning: could not cache the decoded images" in result.stderr
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # no partial file, no temp file


# Run as a script file, not `-c`: the decoding workers (spawned) import it too, as `__mp_main__`,
# so the hook below runs in them. The first image any process decodes creates STARTED, then waits
# for INTERRUPTED, which the main process creates when Ctrl-C reaches it: the signal always lands
# mid-decoding, however fast the machine, and the decoding only goes on once it has.
INTERRUPTED_DECODER = """
import signal, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from cnn.data import folder
STARTED, INTERRUPTED = Path({started!r}), Path({interrupted!r})
decode = folder.load_image

def held_decode(path, image_shape):
    if not INTERRUPTED.exists():
        STARTED.touch()
        while not INTERRUPTED.exists():
            time.sleep(0.01)
    return decode(path, image_shape)

folder.load_image = held_decode

def on_ctrl_c(signum, frame):
    INTERRUPTED.touch()
    signal.default_int_handler(signum, frame)

if __name__ == "__main__":
    # Ctrl-C raises KeyboardInterrupt as in a terminal, also where the suite runs in the
    # background (there SIGINT starts out ignored, and Python then keeps ignoring it)
    signal.signal(signal.SIGINT, on_ctrl_c)
    from cnn.data.datasets import load_dataset
    load_dataset("folder", {data!r}, image_size=28, channels=1)
"""


def test_an_interrupt_while_decoding_leaves_nothing_in_the_cache(tree, tmp_path):
    root = tree(10, "0123456789")
    for name in "0123456789":  # 800 files: decoded by worker processes where there are cores
        for f in list((root / name).iterdir()):
            for copy in range(7):
                shutil.copyfile(f, f.with_name(f"{copy}{f.name}"))
    cache, started = tmp_path / "cache", tmp_path / "started"
    script = tmp_path / "decode.py"
    script.write_text(INTERRUPTED_DECODER.format(root=str(ROOT), started=str(started),
                                                 interrupted=str(tmp_path / "interrupted"), data=str(root)))
    child = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    try:
        wait_for(started, child)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode != 0 and "KeyboardInterrupt" in stderr, stderr[-3000:]
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    assert len(load(root).train) == 720  # and the next run decodes it whole


# -- bad files ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["text", "truncated", "empty", "oversized"])
def test_a_bad_file_is_skipped_with_one_summary_line(tree, capsys, bad):
    root = tree()
    path = root / "1" / ("notes.txt" if bad == "text" else "bad.png")
    if bad == "text":
        path.write_text("not an image\n")
    elif bad == "truncated":
        path.write_bytes((root / "1" / "1_00000.png").read_bytes()[:60])
    elif bad == "empty":
        path.write_bytes(b"")
    else:
        oversized_png(path)
    data = load(root)
    assert len(data.train) + len(data.test) == 12
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipped 1 of 13 files under ")
    assert f"1/{path.name}" in lines[0]
    load(root)  # from the cache: the same process does not repeat the line
    assert capsys.readouterr().err == ""


def test_the_summary_names_the_first_few_bad_files_and_counts_the_rest(tree, capsys):
    root = tree()
    for i in range(5):
        (root / "0" / f"bad{i}.png").write_text("no")
    load(root)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "skipped 5 of 17 files" in line and "0/bad0.png, 0/bad1.png, 0/bad2.png and 2 more" in line


# -- trees that cannot be trained on ---------------------------------------------------------
def _empty_class(root: Path) -> str:
    (root / "9").mkdir()
    return f"class folder {root / '9'} holds no files"


def _only_bad_files(root: Path) -> str:
    (root / "9").mkdir()
    (root / "9" / "x.png").write_text("no")
    return f"class folder {root / '9'} holds no readable image"


def _one_class(root: Path) -> str:
    for name in ("1", "2"):
        for f in (root / name).iterdir():
            f.unlink()
        (root / name).rmdir()
    return f"{root} needs at least two class subfolders (PATH/<class>/<image>), found only '0'"


def _test_class_not_in_train(root: Path) -> str:
    (root / "train").mkdir()
    (root / "test").mkdir()
    for name in ("0", "1"):
        (root / name).rename(root / "train" / name)
    (root / "2").rename(root / "test" / "2")
    return f"{root / 'test'} has class folders the train set lacks: 2"


def _not_a_directory(root: Path) -> str:
    target = root.parent / "missing"
    return f"data.data_dir {target} is not a directory"


@pytest.mark.parametrize("make", [_empty_class, _only_bad_files, _one_class, _test_class_not_in_train,
                                  _not_a_directory])
def test_a_tree_that_cannot_be_trained_on_is_one_data_error(tree, make):
    root = tree()
    message = make(root)
    target = root.parent / "missing" if make is _not_a_directory else root
    with pytest.raises(DataError) as caught:
        load(target)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("options, key", [({"image_size": 4}, "data.image_size 4"),
                                          ({"channels": 2}, "data.channels 2"),
                                          ({"test_fraction": 0.0}, "data.test_fraction 0.0")])
def test_bad_folder_options_name_the_key(tree, options, key):
    root = tree()
    with pytest.raises(ConfigError, match=key):
        load_dataset("folder", root, **options)


def test_the_official_datasets_keep_their_shape():
    assert get_spec("mnist", None, 28, 1).image_shape == (28, 28, 1)
    with pytest.raises(ConfigError, match="data.image_size 32 does not apply to mnist"):
        get_spec("mnist", None, 32)


def test_a_checkpoint_of_another_folder_of_the_same_shape_is_refused_by_its_class_names():
    from cnn.weights import mismatch

    shape = dict(in_channels=1, image_size=28, num_classes=2)
    line = mismatch({**shape, "classes": ["cat", "dog"]}, {**shape, "classes": ("ant", "bee")}, "x.ckpt")
    assert line == "checkpoint x.ckpt was trained for the classes cat, dog; this config has ant, bee"
    assert mismatch({**shape, "classes": ["cat", "dog"]}, {**shape, "classes": ("cat", "dog")}, "x") is None
