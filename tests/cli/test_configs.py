"""Every shipped config is one file for both frameworks: through the real CLI it parses for
torch and for MLX, names the dataset its file name promises, and the two frameworks read the
same model and data settings from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cnn.config_translation import network_class_for
from tests.cli_runs import ROOT, run_cli

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def merged_config(config: Path, framework: str) -> dict:
    result = run_cli("fit", "--config", str(config), "--framework", framework, "--print_config")
    assert result.returncode == 0, f"{framework}: {result.stderr[-2000:]}"
    return yaml.safe_load(result.stdout)


def test_the_configs_folder_holds_one_config_per_dataset_at_least():
    assert {p.stem for p in CONFIGS} >= {"mnist", "fashion_mnist", "cifar10", "cifar100"}


# Configs that differ from a sibling only in values (fashion_mnist from mnist, cifar100 from cifar10)
# run in the slow set: each costs two CLI start-ups and no new code path.
SLOW_CONFIGS = {"fashion_mnist", "cifar100", "mnist_fast"}


@pytest.mark.parametrize("config", [pytest.param(c, marks=pytest.mark.slow) if c.stem in SLOW_CONFIGS else c
                                    for c in CONFIGS], ids=lambda p: p.stem)
def test_config_drives_both_frameworks_alike(config: Path):
    written = yaml.safe_load(config.read_text())
    torch_side, mlx_side = merged_config(config, "torch"), merged_config(config, "mlx")
    assert config.stem.startswith(torch_side["data"]["dataset"])
    assert torch_side["seed_everything"] == mlx_side["seed_everything"] == written["seed_everything"]
    net = mlx_side["model"].get("net")
    if isinstance(net, dict):  # the project's network is named for each side: compare as torch names it
        net["class_path"] = network_class_for(net["class_path"], "torch")
    for section in ("trainer", "model", "data"):
        for key, value in written[section].items():
            assert torch_side[section][key] == mlx_side[section][key] == value, f"{section}.{key}"
