"""Shared fixtures: the real data sets under ../shared/data, read once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# As cnn.mx.blas sets it for torch's MKL, and for torch's own OpenMP threads too, which this
# process may load first: the tests run CLI subprocesses and test workers side by side on few
# cores, where OpenMP threads that spin after each parallel region steal each other's time.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# One OpenMP thread a process (torch's operators, the MKL torch and MLX share): `make test` runs two
# workers on two cores, and a worker's second thread only takes the other worker's core (the
# suite's times with and without: docs/performance.md, "The test suite"). Runs the tests start
# inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# What the caller's environment may hold that changes what the product does: its own settings (CNN_*), a job
# or launch it runs inside (SLURM_*, torch's and Lightning's rank variables, MLX's), a tracking server. The
# suite starts from none of them, and a test that needs one sets it (runs the tests start inherit this).
_CALLERS = ("CNN_", "SLURM_", "PL_", "MLX_", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "GLOBAL_RANK", "RANK",
            "LOCAL_WORLD_SIZE", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "MLFLOW_TRACKING_URI", "WANDB_MODE",
            "WANDB_PROJECT")
for _name in [n for n in os.environ if n.startswith(_CALLERS[:4]) or n in _CALLERS[4:]]:
    del os.environ[_name]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data`` beside the project (real MNIST, Fashion-MNIST, CIFAR PNGs)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist(shared_data):
    """The full real MNIST, loaded once through the public loader (no network)."""
    from cnn.data import load_dataset

    return load_dataset("mnist", data_dir=shared_data / "mnist", download=False)



@pytest.fixture(scope="session")
def short_fits(tmp_path_factory):
    """``(logs, {"torch": run_dir, "mlx": run_dir})`` of one short ``fit`` of configs/mnist.yaml
    with each framework (``tests.cli_runs.SHORT_FIT``), shared by every test that only reads
    what such a fit wrote."""
    from tests.cli_runs import SHORT_FIT, fit_both

    logs = tmp_path_factory.mktemp("short_fits")
    return logs, fit_both(logs, *SHORT_FIT)



# The files whose runs take longest, longest first. `make test` hands whole files to its two
# workers in collection order (--dist loadfile --no-loadscope-reorder): these go out first, so
# the suite ends on short files that the two workers share out, not on one long file that keeps
# one worker busy while the other waits. Run `pytest --durations=0` and sum by file to revise it;
# a file missing here only runs later.
LONG_FILES_FIRST = ("test_reliability_runs.py", "test_resume.py", "test_distributed.py", "test_faults.py",
                    "test_trackers.py", "test_reliability_monitor.py", "test_reliability_files.py", "test_both_clis.py",
                    "test_own_classes.py", "test_bench.py", "test_init_from.py", "test_trainer_flags.py",
                    "test_optimizer_flags.py", "test_reliability.py", "test_run_options.py", "test_launch.py",
                    "test_fast_recipe.py", "test_cli_runs.py", "test_config_crossing.py", "test_convert.py",
                    "test_startup_imports.py", "test_nothing_lost.py")


@pytest.hookimpl(trylast=True)  # after pytest orders items by fixture parameters
def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.hasplugin("randomly") and config.getoption("randomly_reorganize"):
        return  # a run in pytest-randomly's order (-p randomly) keeps it: the order is what it tests
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order
