# Two commands matter: `make run` (everything on embedded defaults) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint setup python-deps node-deps services ui bench clean

setup: python-deps node-deps

python-deps: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[app,dev]'
	@touch $(STAMP)

node-deps:
	@bash scripts/npm-install.sh tests/interop echo_client_example

services:
	@bash scripts/ensure-services.sh

ui: node-deps
	@if [ -f echo_client_example/package.json ]; then (cd echo_client_example && npm run build --silent); fi

lint: python-deps
	$(VENV)/bin/ruff check broadcaster app tests bench
	$(VENV)/bin/mypy

test: setup services ui lint
	$(VENV)/bin/pytest -q

run: setup ui
	@bash scripts/run-all.sh

# Side by side with soketi (installed from ../shared/peers when missing); see docs/performance.md.
bench: python-deps
	bash bench/run.sh --repeat 2

clean:
	rm -rf $(VENV) tests/interop/node_modules echo_client_example/node_modules echo_client_example/dist
