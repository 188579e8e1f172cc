# Two commands on a fresh Linux machine:  make run  (the desktop app)   make test  (the test suite)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch 2.13.0 is what this project is developed and tested with; override
# (e.g. TORCH=torch) to let pip pick the build for your machine.
TORCH ?= torch==2.13.0

.PHONY: setup dev run test lint bench clean train-default

$(VENV)/.setup: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.setup
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.setup
dev: $(VENV)/.dev

run: setup
	$(VENV)/bin/dan-fer app

test: dev
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

lint: dev
	$(VENV)/bin/ruff check dan_core app tests

bench: setup
	$(PY) -m dan_core.bench_model

clean:
	rm -rf $(VENV) .pytest_cache

# The default model from scratch in one command (no install: PYTHONPATH=. and the interpreter's own
# torch), then calibrated, exported and scored. DEVICE=cuda: one GPU (on a lent device machine see
# dan_core/recipes/device.sh); DEVICE=cpu: one CPU in 150 minutes of training, checkpointed every 5
# minutes, resumed by running the same command again (run it in the background with nice); ARGS=--smoke
# runs a few steps on the CPU.
DEVICE ?= auto
train-default:
	PYTHONPATH=. $(PYTHON) -m dan_core.recipes.train_default --device $(DEVICE) $(ARGS)

