# `make demo` and `make test` are all the set-up a fresh clone needs: each creates .venv if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: help install demo test lint bench contract package clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "Cannot create a virtual environment with $(PYTHON). On Debian or Ubuntu: sudo apt install python3-venv"; \
	  exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install malcapture with its test and lint tools

demo: $(STAMP)  ## every login against the built-in stand-ins of the services (nothing leaves the machine)
	$(BIN)/malcapture demo

COVERAGE_FLOOR := 89

test: $(STAMP)  ## run every test (headless Chromium ones included) two workers a core, with branch coverage and its floor
	$(BIN)/pytest -n auto --dist worksteal --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

lint: $(STAMP)  ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

# The commit `make bench` compares this tree with, interleaved: the start of this round of work.
BASELINE ?= 7b03cd6

bench: $(BENCH_STAMP)  ## the login against google-auth-oauthlib's and BASELINE's (loopback, then a 100 ms TLS link), --help, memory, a 5,000-line save, Plex's sign-in
	$(BIN)/python scripts/bench.py --baseline $(BASELINE)
	$(BIN)/python scripts/bench_link.py --baseline $(BASELINE)
	$(BIN)/python scripts/bench_plex.py

# Kometa's image runs Python 3.13 (python:3.13-slim): the wheel is tried there when this machine has one.
KOMETA_PYTHON ?= $(shell for p in $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null) python3.13 python3; do \
	  "$$p" -c '' 2>/dev/null && { echo "$$p"; break; }; done)

package: $(STAMP)  ## build the wheel and sdist, install the wheel into a fresh venv of Kometa's Python (binary wheels only, Kometa's ruamel.yaml pin) and run the demo there
	rm -rf dist
	$(BIN)/python -m pip install --quiet -e '.[package]'
	$(BIN)/python -m build --outdir dist . >/dev/null
	sh scripts/try_wheel.sh "$(KOMETA_PYTHON)" dist

contract: $(STAMP)  ## check the installed command against ../shared/CONTRACT.md (beside the project)
	@if [ -x ../shared/tools/check-contract ]; then ../shared/tools/check-contract $(BIN)/malcapture; \
	else echo "The contract check lives beside the project, in ../shared/tools/check-contract, which this clone does not have: nothing to check."; fi

clean:  ## remove .venv, caches and build output
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info build dist .coverage
