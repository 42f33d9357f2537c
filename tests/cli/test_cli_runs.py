"""The suite's in-process command line (``tests.cli_runs.run_cli``) behaves as ``python cli.py``
does, again and again in one process, and leaves the process as it found it."""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import warnings

import numpy as np
import pytest
import torch

from tests.cli_runs import ROOT, run_cli, run_cli_process, short_run


def test_a_command_run_in_process_prints_and_exits_as_a_fresh_process_every_time():
    args = ("fit", "--config", "configs/mnist.yaml", "--trainer.max_epochs", "abc")
    fresh = run_cli_process(*args, timeout=300)
    assert fresh.returncode == 1 and fresh.stderr.startswith("error: ")
    for _ in range(2):
        result = run_cli(*args)
        assert (result.returncode, result.stdout, result.stderr) == (fresh.returncode, fresh.stdout,
                                                                     fresh.stderr)


def process_state() -> dict:
    return {"cwd": os.getcwd(), "argv": list(sys.argv), "env": dict(os.environ),
            "signals": {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)},
            "warnings": list(warnings.filters),
            "loggers": {name: (lg.level, list(lg.handlers), lg.propagate) for name, lg in
                        logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)},
            "random": (random.random(), np.random.random(), torch.rand(1).item()),
            "torch": (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())}


@pytest.mark.parametrize("framework", ["torch", "mlx"])
def test_a_fit_in_process_leaves_the_process_as_it_found_it(framework, tmp_path):
    # a first run imports what later runs find imported (and creates the loggers of those modules)
    assert run_cli("fit", "--framework", framework, "--model.lr", "-1").returncode != 0
    seeds = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    before = process_state()
    random.setstate(seeds[0]), np.random.set_state(seeds[1]), torch.random.set_rng_state(seeds[2])
    # mnist.yaml seeds everything (PL_GLOBAL_SEED in the environment) and asks for deterministic algorithms
    config = str(ROOT / "configs/mnist.yaml")
    result = run_cli("fit", "--framework", framework, *short_run(config=config, train_batches=1),
                     "--trainer.default_root_dir", str(tmp_path), cwd=tmp_path.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "mnist" / framework / "version_0").is_dir()
    after = process_state()
    # loggers of modules the fit imported for the first time stay, as those modules stay imported
    after["loggers"] = {name: state for name, state in after["loggers"].items() if name in before["loggers"]}
    assert after == before
