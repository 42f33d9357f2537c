"""Hostile files, round three: what a user hands the real command line (issue 25).

A plot written over a checkpoint, a config that expands without end, a checkpoint that inflates
to gigabytes or holds NaN, a class folder that links back into its dataset, environment values
that cannot be used, a truncated events file, configs that name what is not a class. Each ends
in one line (``error:`` and a non-zero exit, or a ``warning:`` and the run goes on), on both
frameworks where both read the file.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cnn.tools import export_pngs
from cnn.tools.events import run_dirs
from tests.cli.test_cli_errors import assert_one_line_error
from tests.cli_runs import run_cli, run_cli_process, short_run

FRAMEWORKS = ("torch", "mlx")
SUFFIX = {"torch": ".ckpt", "mlx": ".safetensors"}
TINY = short_run(train_batches=2, val_batches=1, test_batches=1, batch_size=32, eval_batch_size=200)
# Values the MLX side cannot use; the fixture's fit runs with them (item 12), in a process of its
# own: they are read when ``cnn.mx`` is first imported.
BAD_ENVIRONMENT = {"CNN_BLAS": "/bin/ls", "CNN_MLX_CACHE_LIMIT": "banana"}


def fit(framework: str, root: Path, *args: str, **kwargs):
    return run_cli("fit", "--framework", framework, *TINY, "--trainer.default_root_dir",
                   str(root), *args, **kwargs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """framework -> the run directory of a one-epoch fit; the MLX one ran with
    ``BAD_ENVIRONMENT`` and its stderr is kept in ``stderr.txt`` beside the run."""
    out = {}
    for framework in FRAMEWORKS:
        root = tmp_path_factory.mktemp(f"fit-{framework}")
        if framework == "mlx":
            result = run_cli_process("fit", "--framework", framework, *TINY, "--trainer.default_root_dir",
                                     str(root), env={**os.environ, **BAD_ENVIRONMENT})
        else:
            result = fit(framework, root)
        assert result.returncode == 0, result.stderr[-3000:]
        (root / "stderr.txt").write_text(result.stderr)
        (out[framework],) = run_dirs(root)
    return out


def last(run: Path, framework: str) -> Path:
    return run / "checkpoints" / f"last{SUFFIX[framework]}"


def image(folder: Path) -> Path:
    path = folder / "digit.png"
    Image.new("L", (28, 28)).save(path)
    return path


def predict(framework: str, ckpt: Path, folder: Path):
    return run_cli("predict", "--framework", framework, "--config", "configs/mnist.yaml",
                   "--ckpt_path", str(ckpt), "--data.predict_files", f"[{image(folder)}]",
                   "--trainer.enable_progress_bar", "false")


# -- 1. plot never writes over what is not its own --------------------------------------------
def test_plot_refuses_an_existing_file_without_force_and_an_output_that_is_not_a_png(runs, tmp_path):
    checkpoint = tmp_path / "last.ckpt"
    shutil.copy(last(runs["torch"], "torch"), checkpoint)
    before = checkpoint.read_bytes()
    logs = str(runs["torch"].parents[2])
    assert_one_line_error(run_cli("plot", logs, "--out", str(checkpoint), "--force"), "--out",
                          ".png")
    old = tmp_path / "curves.png"
    old.write_bytes(b"keep me")
    assert_one_line_error(run_cli("plot", logs, "--out", str(old)), str(old), "--force")
    assert checkpoint.read_bytes() == before and old.read_bytes() == b"keep me"
    replaced = run_cli("plot", logs, "--out", str(old), "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert old.read_bytes()[:4] == b"\x89PNG"


# -- 3. a config that expands without end --------------------------------------------------------
def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\ndata:\n  predict_files: *a{levels}\n"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_config_of_nested_aliases_is_refused_before_it_is_expanded(framework, tmp_path):
    config = tmp_path / "laughs.yaml"
    config.write_text(billion_laughs())
    # a process of its own, so that a regression ends at the timeout instead of hanging the suite
    result = run_cli_process("fit", "--framework", framework, *TINY, "--trainer.default_root_dir",
                             str(tmp_path / "logs"), "--config", str(config), timeout=120)
    assert_one_line_error(result, str(config), "expands to more than")
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_config_that_contains_itself_is_refused(framework, tmp_path):
    config = tmp_path / "loop.yaml"
    config.write_text("data: &loop\n  more: *loop\n")
    result = run_cli_process("fit", "--framework", framework, *TINY, "--trainer.default_root_dir",
                             str(tmp_path / "logs"), "--config", str(config), timeout=120)
    assert_one_line_error(result, str(config), "nested deeper than")


# -- 5. a checkpoint that declares more bytes than it holds ---------------------------------------
def zip_bomb(good: Path, out: Path, inflated: int = 256 << 20) -> Path:
    """``good`` with its largest storage replaced by ``inflated`` deflated zero bytes: a file of
    a few megabytes that torch would inflate in full before noticing the size is wrong."""
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(out, "w") as bomb:
        largest = max(source.infolist(), key=lambda i: i.file_size)
        for info in source.infolist():
            if info is not largest:
                bomb.writestr(info, source.read(info), compress_type=zipfile.ZIP_STORED)
                continue
            entry = zipfile.ZipInfo(info.filename)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with bomb.open(entry, "w", force_zip64=True) as stream:
                zeros = bytes(1 << 20)
                for _ in range(inflated >> 20):
                    stream.write(zeros)
    return out


@pytest.mark.parametrize("command", ["predict", "fit", "convert"])
def test_a_checkpoint_zip_bomb_is_refused_by_its_declared_sizes_before_any_tensor_is_read(
        runs, command, tmp_path):
    bomb = zip_bomb(last(runs["torch"], "torch"), tmp_path / "bomb.ckpt")
    assert bomb.stat().st_size * 16 < 256 << 20
    if command == "predict":
        result = predict("torch", bomb, tmp_path)
    elif command == "fit":
        result = fit("torch", tmp_path / "logs", "--ckpt_path", str(bomb),
                     "--trainer.max_epochs", "2")
    else:  # the MLX side reads a .ckpt only through convert
        result = run_cli("convert", str(bomb), "--to", "mlx", "--out", str(tmp_path / "x.safetensors"))
    assert_one_line_error(result, str(bomb), "declares", "MiB of records but holds")


def padded(good: Path, framework: str, out: Path, extra: int = 40 << 20) -> Path:
    """``good`` with one more tensor of ``extra`` zero bytes: a whole file, nothing compressed, larger than a
    checkpoint of the seed CNN (a few MiB of weights) can be."""
    if framework == "torch":
        import torch

        checkpoint = torch.load(good, weights_only=True)
        checkpoint["state_dict"]["padding"] = torch.zeros(extra // 4)
        torch.save(checkpoint, out)
    else:
        import cnn.mx  # noqa: F401  (its BLAS before mlx)

        import mlx.core as mx

        arrays, metadata = mx.load(str(good), return_metadata=True)
        mx.save_safetensors(str(out), {**arrays, "model.padding": mx.zeros(extra // 4)}, metadata=metadata)
    return out


@pytest.mark.parametrize("command", ["predict", "init_from"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_checkpoint_larger_than_its_model_can_need_is_refused_before_any_tensor_is_read(
        runs, framework, command, tmp_path):
    """Bounded by the model the command loads it into (its weights x 8 + 16 MiB), not by the file's own size."""
    big = padded(last(runs[framework], framework), framework, tmp_path / f"big{SUFFIX[framework]}")
    if command == "predict":
        result = predict(framework, big, tmp_path)
    else:
        result = fit(framework, tmp_path / "logs", "--model.init_from", str(big))
        assert not (tmp_path / "logs").exists()
    assert_one_line_error(result, str(big), "more than a checkpoint of this model can need")


def test_the_size_bound_is_the_loaded_models_so_a_larger_network_takes_a_larger_checkpoint(runs, tmp_path):
    from cnn.errors import ConfigError
    from cnn.pt.model import SeedCNN
    from cnn.pt.resnet import ResNet
    from cnn.weights import check_declared_sizes

    def state_bytes(net) -> int:
        return sum(t.numel() * t.element_size() for t in net.state_dict().values())

    big = padded(last(runs["torch"], "torch"), "torch", tmp_path / "big.ckpt")
    wide = state_bytes(ResNet(in_channels=1, num_classes=10, width=128))
    assert wide * 8 > big.stat().st_size  # a checkpoint of the wide ResNet may be this large
    check_declared_sizes(str(big), wide)
    with pytest.raises(ConfigError, match="more than a checkpoint of this model can need"):
        check_declared_sizes(str(big), state_bytes(SeedCNN(in_channels=1, image_size=28, num_classes=10)))


# -- 10. weights that are not finite, or not floating point ----------------------------------------
def damaged_copy(run: Path, framework: str, folder: Path, tensor: str, how: str) -> Path:
    """The run's ``last`` with ``tensor`` made NaN (``how="nan"``), or int64 (``"int"``)."""
    out = folder / f"{how}{SUFFIX[framework]}"
    if framework == "torch":
        import torch

        from cnn.pt.checkpoint import SafeCheckpointIO

        ckpt = SafeCheckpointIO().load_checkpoint(last(run, framework))
        value = ckpt["state_dict"][tensor]
        ckpt["state_dict"][tensor] = value.clone().fill_(float("nan")) if how == "nan" else \
            value.to(torch.int64)
        SafeCheckpointIO().save_checkpoint(ckpt, out)
    else:
        from cnn.mx import checkpoint

        import mlx.core as mx

        ckpt = checkpoint.load_checkpoint(last(run, framework))
        value = ckpt["state_dict"][tensor]
        ckpt["state_dict"][tensor] = mx.full(value.shape, float("nan")) if how == "nan" else \
            value.astype(mx.int64)
        checkpoint.save_checkpoint(out, ckpt)
    return out


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("how, words", [("nan", ["net.fc1.weight", "not finite"]),
                                        ("int", ["net.fc1.weight", "int64", "float32"])])
def test_predict_refuses_weights_that_are_not_finite_floats_naming_the_tensor(
        runs, framework, how, words, tmp_path):
    bad = damaged_copy(runs[framework], framework, tmp_path, "net.fc1.weight", how)
    assert_one_line_error(predict(framework, bad, tmp_path), str(bad), *words)


def test_convert_refuses_non_finite_weights(runs, tmp_path):
    bad = damaged_copy(runs["mlx"], "mlx", tmp_path, "net.fc1.weight", "nan")
    out = tmp_path / "out.safetensors"
    result = run_cli("convert", str(bad), "--to", "torch", "--out", str(out))
    assert_one_line_error(result, str(bad), "net.fc1.weight", "not finite")
    assert not out.exists()


# -- 11. class folders that are, or hold, other class folders -----------------------------------
@pytest.fixture
def folder_data(tmp_path) -> Path:
    root = tmp_path / "digits"
    assert export_pngs.main([str(root), "--per-class", "12"]) == 0
    for extra in sorted(root.iterdir())[2:]:
        shutil.rmtree(extra)
    return root


FOLDER = ("--data.dataset", "folder", "--data.image_size", "16", "--data.channels", "1",
          "--data.batch_size", "4", "--data.eval_batch_size", "4")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("link_to", ["root", "sibling"])
def test_a_class_folder_that_links_into_the_dataset_is_refused(framework, link_to, folder_data,
                                                               tmp_path):
    first = sorted(folder_data.iterdir())[0]
    (folder_data / "zz").symlink_to(folder_data if link_to == "root" else first,
                                    target_is_directory=True)
    result = fit(framework, tmp_path / "logs", "--data.data_dir", str(folder_data), *FOLDER,
                 env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    words = ["holds the class folder", first.name] if link_to == "root" else ["is the class folder",
                                                                            first.name]
    assert_one_line_error(result, str(folder_data / "zz"), *words)
    assert not (tmp_path / "logs").exists()


# -- 12. environment values that cannot be used ---------------------------------------------------
def test_unusable_mlx_environment_values_are_one_warning_each_at_start_up(runs):
    stderr = (runs["mlx"].parents[2] / "stderr.txt").read_text().splitlines()
    blas = [line for line in stderr if "CNN_BLAS" in line]
    cache = [line for line in stderr if "CNN_MLX_CACHE_LIMIT" in line]
    assert len(blas) == 1 and blas[0].startswith("warning: CNN_BLAS=/bin/ls "), stderr
    assert "instead" in blas[0]
    assert cache == ["warning: CNN_MLX_CACHE_LIMIT='banana' is not a number of bytes nor off; "
                     "using 512 MiB instead"], stderr


# -- 13. a truncated events file -------------------------------------------------------------------
def test_plot_warns_about_a_truncated_events_file_and_still_draws(runs, tmp_path):
    run = tmp_path / "logs" / "mlx" / "version_0"
    shutil.copytree(runs["mlx"], run)
    events = sorted(run.glob("events.out.tfevents.*"))[0]  # fit's (a test may have added one)
    events.write_bytes(events.read_bytes()[:-7])  # cut inside its last record
    out = tmp_path / "curves.png"
    result = run_cli("plot", str(tmp_path / "logs"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and str(events) in lines[0], lines
    assert "truncated" in lines[0] and out.read_bytes()[:4] == b"\x89PNG"


# -- 15. keys and kinds of checkpoint named in full ------------------------------------------------
@pytest.mark.parametrize("change", ["extra", "missing"])
def test_mlx_predict_names_an_extra_or_missing_key_in_full(runs, change, tmp_path):
    from cnn.mx import checkpoint

    import mlx.core as mx

    ckpt = checkpoint.load_checkpoint(last(runs["mlx"], "mlx"))
    if change == "extra":
        ckpt["state_dict"]["net.fc4_unexpected.weight"] = mx.zeros((2,))
    else:
        del ckpt["state_dict"]["net.fc2.bias"]
    bad = tmp_path / f"{change}.safetensors"
    checkpoint.save_checkpoint(bad, ckpt)
    key = "net.fc4_unexpected.weight" if change == "extra" else "net.fc2.bias"
    assert_one_line_error(predict("mlx", bad, tmp_path), str(bad), f"'{key}'")


def test_torch_fit_given_an_mlx_checkpoint_says_to_use_the_mlx_framework(runs, tmp_path):
    mlx_last = last(runs["mlx"], "mlx")
    result = fit("torch", tmp_path / "logs", "--ckpt_path", str(mlx_last), "--trainer.max_epochs", "2")
    assert_one_line_error(result, str(mlx_last), "an MLX checkpoint", "--framework mlx")


# -- Configs are code: a class path that is not a class for its key ----------------------------
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("key, path, words", [
    ("trainer.callbacks", "builtins.dict", ["builtins.dict is not a Callback"]),
    ("trainer.callbacks", "os.path", ["os.path is not a class"]),
    ("trainer.logger", "cnn.data.folder.FolderListing", ["FolderListing is not a Logger"]),
    ("trainer.callbacks", "this.Foo", ["this.Foo", "has no attribute 'Foo'"]),
])
def test_a_class_path_that_is_not_a_class_for_its_key_is_one_short_line(framework, key, path,
                                                                       words, tmp_path):
    value = f"[{{class_path: {path}}}]" if key == "trainer.callbacks" else f"{{class_path: {path}}}"
    result = fit(framework, tmp_path / "logs", f"--{key}", value)
    assert_one_line_error(result, key, *words)
    assert len(result.stderr.strip().splitlines()[-1]) < 300
