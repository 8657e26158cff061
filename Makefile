# Every target installs into .venv/ first when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test test-slow test-gpu bench bench-contention profile classifier zoo-report compare tensorboard clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## train the default recipe (modern_dcgan + rpgan) for train_minutes (conf/train.yaml) of training on this machine (iterations=auto); extra overrides: make train ARGS="model=mlp"
train: $(STAMP)
	$(PY) -m gan.train iterations=auto $(ARGS)

## the quick test suite
test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

## the slow tests (full recipes, sweeps)
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(ARGS)

## tests that need a CUDA GPU (skip cleanly without one)
test-gpu: $(STAMP)
	$(PY) -m pytest -q -m gpu $(ARGS)

## template vs a plain PyTorch loop, the speed switches, peak memory -> outputs/bench.json (about 10 min)
bench: $(STAMP)
	$(PY) -m bench.run $(ARGS)

## training speed alone and beside a second training, per OpenMP thread setting -> outputs/bench_contention.json (about 25 min)
bench-contention: $(STAMP)
	$(PY) -m bench.contention $(ARGS)

## where one GAN iteration of the default recipe spends its time, by phase and by op (about 1 min); ARGS="--recipe cs231n_dcgan trainer.precision=32-true"
profile: $(STAMP)
	$(PY) -m bench.profile $(ARGS)

## train (or find cached) the MNIST classifier behind FID/KID/precision/recall (about 70 s)
classifier: $(STAMP)
	$(PY) -m gan.metrics.classifier $(ARGS)

## train every tutorial recipe for 2 CPU minutes each, score each: the README's table (about 25 min)
zoo-report: $(STAMP)
	$(PY) -m gan.zoo_report $(ARGS)

## one table of runs grouped by their settings, seeds averaged (README, "Compare runs"): make compare ARGS="outputs/multiruns/<date>/<time> --sort fid"
compare: $(STAMP)
	$(PY) -m gan.compare $(ARGS)

## TensorBoard over every run under outputs/, bound to localhost (over ssh: README); flags: make tensorboard ARGS="--port 7007"
tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir outputs --host 127.0.0.1 --port 6006 $(ARGS)

## remove run outputs and caches (keeps .venv; `rm -rf .venv` for a fresh install)
clean:
	rm -rf outputs .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
