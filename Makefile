# drip: the README's quick start is `make demo`, and `make test` runs the tests.
#
# Both create .venv when it is missing. Each install leaves a stamp file
# (.venv/.installed-<extra>) that depends on pyproject.toml, so the project is
# re-installed only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# pytest-xdist workers of `make test`. Most slow tests wait on real services (Celery
# workers, pacing, Redis, PostgreSQL) rather than use the CPU, so three workers fill
# a 2-core machine. `--dist loadgroup` keeps an `xdist_group` on one worker, and
# tests/conftest.py starts the longest tests first. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 3

# What `make demo` runs: the demo on the embedded default (a fresh database in
# a temporary folder, a year of campaigns on virtual time, an HTML timeline).
DEMO_CMD ?= $(BIN)/drip demo

# Fails with a clear message unless the interpreter $(1) is Python 3.11 or newer.
python_hint = use a newer one, e.g.: make $(or $(MAKECMDGOALS),test) PYTHON=python3.12
require_python311 = @if ! command -v $(1) >/dev/null 2>&1; then \
  echo "error: drip needs Python 3.11 or newer, and '$(1)' was not found; $(python_hint)" >&2; \
  exit 1; fi; \
  $(1) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
  echo "error: drip needs Python 3.11 or newer, but '$(1)' is $$($(1) -V 2>&1 | head -n 1);" \
  "$(python_hint)" >&2; exit 1; }

.DEFAULT_GOAL := help
.PHONY: help demo test lint

help:
	@echo "make demo   create .venv, install drip, run the demo on the embedded default"
	@echo "make test   create .venv, install drip with its dev extra, run the tests"
	@echo "make lint   ruff check, ruff format --check, mypy --strict"
	@echo "variables:  PYTHON=$(PYTHON)  VENV=$(VENV)  PYTEST_WORKERS=$(PYTEST_WORKERS)  PYTEST_ARGS=$(PYTEST_ARGS)"

demo: $(VENV)/.installed-base
	$(DEMO_CMD)

test: $(VENV)/.installed-dev
	$(BIN)/pytest -q --durations=25 -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict drip workers

$(BIN)/python:
	$(call require_python311,$(PYTHON))
	$(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian or Ubuntu install python3-venv." >&2; \
	  exit 1; }

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(call require_python311,$(BIN)/python)
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(call require_python311,$(BIN)/python)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@
