"""``cnn.atomic``: a file is either the old one or the complete new one, never half of one.

Each test states one clause of the contract of ``atomic_path`` / ``write_bytes`` / ``write_text``.
The modules that save through it (checkpoints, convert, plot, predictions, bench) have their own
end-to-end tests; these pin the shared routine down without any framework.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnn import atomic

ROOT = Path(__file__).resolve().parents[1]


class WriterFailed(Exception):
    pass


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------------------------------------
# The target appears complete
def test_write_bytes_makes_the_target_hold_exactly_the_data(tmp_path):
    data = bytes(range(256)) * 1000
    atomic.write_bytes(tmp_path / "weights.bin", data)
    assert (tmp_path / "weights.bin").read_bytes() == data
    assert listing(tmp_path) == ["weights.bin"]


def test_write_text_makes_the_target_hold_exactly_the_text_in_utf8(tmp_path):
    text = "file,class\nzürich.png,T-shirt/top\n"
    atomic.write_text(str(tmp_path / "rows.csv"), text)
    assert (tmp_path / "rows.csv").read_bytes() == text.encode("utf-8")
    assert listing(tmp_path) == ["rows.csv"]


def test_an_existing_target_is_replaced_whole(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old content that is longer than the new one\n")
    atomic.write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert listing(tmp_path) == ["report.json"]


def test_atomic_path_moves_what_the_writer_wrote_to_the_target_when_the_block_ends(tmp_path):
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    with atomic.atomic_path(target) as tmp:
        Path(tmp).write_bytes(b"new")  # as savefig / save_file / PIL would, by name
        assert target.read_bytes() == b"old"  # nothing visible under the final name yet
    assert target.read_bytes() == b"new"
    assert listing(tmp_path) == ["plot.png"]


def test_missing_parent_directories_are_created(tmp_path):
    target = tmp_path / "a" / "b" / "last.ckpt"
    atomic.write_bytes(target, b"x")
    assert target.read_bytes() == b"x"


def test_a_new_file_gets_the_mode_of_any_new_file_not_0600(tmp_path):
    old = os.umask(0o002)
    try:
        atomic.write_bytes(tmp_path / "shared.ckpt", b"x")
        with atomic.atomic_path(tmp_path / "shared.png") as tmp:
            Path(tmp).write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.ckpt").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "shared.png").stat().st_mode & 0o777 == 0o664


# ---------------------------------------------------------------------------------------------
# The temp file: beside the target, hidden, with the target's extension
def test_the_temp_file_lives_in_the_targets_directory(tmp_path):
    target = tmp_path / "sub" / "last.safetensors"
    target.parent.mkdir()
    with atomic.atomic_path(target) as tmp:
        # Same directory = same filesystem, which is what makes os.replace atomic.
        assert Path(tmp).parent == target.parent
        assert Path(tmp).is_file() and Path(tmp).stat().st_size == 0
        assert listing(target.parent) == [Path(tmp).name]


@pytest.mark.parametrize("name, suffix", [("last.safetensors", ".safetensors"),
                                          ("curves.png", ".png"), ("preds.csv", ".csv"),
                                          ("README", "")])
def test_the_temp_name_is_hidden_names_the_target_and_keeps_its_extension(tmp_path, name,
                                                                          suffix):
    # mx.save_safetensors appends ".safetensors" to a name without it; PIL and matplotlib
    # choose the format from the suffix: the temp name must end like the target.
    with atomic.atomic_path(tmp_path / name) as tmp:
        tmp_name = Path(tmp).name
    assert tmp_name.startswith("." + Path(name).stem + ".")
    assert tmp_name.endswith(".tmp" + suffix)
    assert tmp_name != name


def test_writes_to_the_same_target_at_once_get_distinct_temp_files_and_the_last_wins(tmp_path):
    target = tmp_path / "last.ckpt"
    with atomic.atomic_path(target) as first, atomic.atomic_path(target) as second:
        assert first != second
        Path(first).write_bytes(b"first")
        Path(second).write_bytes(b"second")
    assert target.read_bytes() == b"first"  # the outer block ends last
    assert listing(tmp_path) == ["last.ckpt"]


# ---------------------------------------------------------------------------------------------
# A writer that fails leaves the previous file untouched and no temp file behind
@pytest.mark.parametrize("error", [WriterFailed, KeyboardInterrupt])
def test_a_writer_that_raises_leaves_the_previous_file_and_no_temp_file(tmp_path, error):
    target = tmp_path / "last.safetensors"
    target.write_bytes(b"previous, complete")
    with pytest.raises(error):
        with atomic.atomic_path(target) as tmp:
            Path(tmp).write_bytes(b"\x00" * 17)  # a torn write
            raise error
    assert target.read_bytes() == b"previous, complete"
    assert listing(tmp_path) == ["last.safetensors"]


def test_a_writer_that_raises_before_any_file_existed_leaves_nothing(tmp_path):
    with pytest.raises(WriterFailed):
        with atomic.atomic_path(tmp_path / "new.png"):
            raise WriterFailed
    assert listing(tmp_path) == []


def test_a_writer_that_deletes_its_temp_file_and_raises_is_reported_as_itself(tmp_path):
    with pytest.raises(WriterFailed):
        with atomic.atomic_path(tmp_path / "x.bin") as tmp:
            os.unlink(tmp)
            raise WriterFailed
    assert listing(tmp_path) == []


def test_data_that_cannot_be_written_leaves_the_previous_file(tmp_path):
    target = tmp_path / "rows.json"
    target.write_text("[]\n")
    with pytest.raises(UnicodeEncodeError):
        atomic.write_text(target, "ok\n\udcff", encoding="utf-8")  # a lone surrogate
    assert target.read_text() == "[]\n"
    assert listing(tmp_path) == ["rows.json"]


def test_a_crash_before_the_data_is_on_disk_leaves_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"previous")

    def killed(fd):
        raise KeyboardInterrupt  # as if the process died while flushing the new data

    monkeypatch.setattr(atomic.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"previous"
    assert listing(tmp_path) == ["last.ckpt"]


# ---------------------------------------------------------------------------------------------
# Order on disk: data, then rename, then directory
def test_the_data_is_fsynced_before_the_rename_and_the_directory_after_it(tmp_path,
                                                                          monkeypatch):
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        kind = "directory" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        real_replace(src, dst)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to tell a directory descriptor from a file one")
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    atomic.write_bytes(tmp_path / "w.bin", b"data")
    assert events == ["fsync file", "replace", "fsync directory"]


def test_a_directory_that_cannot_be_fsynced_does_not_fail_the_write(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(22, "Invalid argument")  # as on filesystems without directory fsync
        real_fsync(fd)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to tell a directory descriptor from a file one")
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    atomic.write_bytes(tmp_path / "w.bin", b"data")
    assert (tmp_path / "w.bin").read_bytes() == b"data"


# ---------------------------------------------------------------------------------------------
# Framework-free core
def test_the_module_imports_neither_torch_nor_mlx_nor_numpy():
    script = ("import sys, cnn.atomic; "
              "loaded = {'torch', 'mlx', 'numpy', 'lightning'} & set(sys.modules); "
              "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
