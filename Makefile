# PoAI: `make run` starts a mining devnet node, `make test` runs every test.
# Both go through `make install`, which is a no-op when .venv and node_modules are current.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
export ETH_HASH_BACKEND := pysha3
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

DATADIR ?= $(HOME)/.poai/devnet
RPC_PORT ?= 8545
WORKERS ?= $(shell nproc)

.PHONY: install run test test-py test-contracts lint typecheck bench clean conformance-all mutation-check

install: $(VENV)/.installed node_modules/.installed

# torch first and pinned: the CPU wheel on local disk; an unpinned torch pulls a CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $@

# npm install, not npm ci: npm leaves other platforms' optional edr builds out of the lock, and
# npm ci then rejects it.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/poai node --dev --mine --miner-workers $(WORKERS) --datadir $(DATADIR) --rpc-addr 127.0.0.1 --rpc-port $(RPC_PORT)

test: install
	bash scripts/run-tests.sh

# `make test` runs a bounded selection of the official Ethereum tests (tests/conformance);
# these run all of them, and plant faults in PoAI's EVM replacements to see the tests catch them.
conformance-all: install
	POAI_CONFORMANCE=all $(BIN)/pytest -q -p no:cacheprovider tests/conformance

mutation-check: install
	$(BIN)/python scripts/mutation_check.py

lint: install
	$(BIN)/ruff check node tests bench migrations scripts
	$(BIN)/mypy
	$(BIN)/python scripts/check_imports.py

clean:
	rm -rf $(VENV) node_modules
