# Two commands do all the set-up: `make train` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATASET ?= mnist
FRAMEWORK ?= torch
# A CPU build of torch (install it before the rest: a bare `torch` requirement on Linux pulls
# the multi-GB CUDA build). Elsewhere, e.g.: make TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# mlflow (with its server) and wandb: the tests of MLFlowLogger and WandbLogger on both sides run
# against the real packages and a local tracking server (they skip without them); none is needed
# to train.
EXTRAS ?= mlx,dev,mlflow,mlflow-server,wandb

.PHONY: venv train test test-slow test-hostile lint tensorboard clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH_PIP_ARGS) "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

train: venv
	$(BIN)/python cli.py fit --config configs/$(DATASET).yaml --framework $(FRAMEWORK)

# Two workers, each test file on one (its module fixtures run once): most of the suite waits on
# single-threaded CLI start-up, which a second worker overlaps. Files go out in collection order,
# the longest first (tests/conftest.py's LONG_FILES_FIRST), not xdist's most-tests-first. A worker
# that crashes is not replaced: the run ends naming the test it crashed in (a replaced one once
# left the run hanging in xdist's scheduler, docs/performance.md).
PYTEST_WORKERS ?= 2

test: venv
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --max-worker-restart=0

# The suite on one core, beside two busy processes, in three random orders and with torch and MKL
# held to other instruction sets (scripts/test_hostile.sh says which is which): 30-60 minutes.
test-hostile: venv
	PYTHON=$(BIN)/python bash scripts/test_hostile.sh

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

tensorboard: venv
	$(BIN)/tensorboard --logdir logs

clean:
	rm -rf $(VENV) .pytest_cache

lint: venv
	$(BIN)/ruff check .
