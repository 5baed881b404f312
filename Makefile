# The two set-up commands of the README work on a fresh machine:
#   make demo   - create .venv if missing, install, run the end-to-end demo on generated data
#   make test   - create .venv if missing, install, run the quality gates and the test suite
# torch is installed first, pinned to the CPU wheel (an unpinned torch pulls a multi-GB CUDA build).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.dfseg-installed

.PHONY: install demo test lint typecheck layers pytest clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[export,serve,app,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/dfseg demo

lint: install
	$(BIN)/ruff check dfseg tests benchmarks examples

typecheck: install
	$(BIN)/mypy dfseg/config dfseg/cli dfseg/ops dfseg/structures dfseg/runtime dfseg/serve

layers: install
	$(BIN)/lint-imports

pytest: install
	$(BIN)/python -m pytest -q

test: lint typecheck layers pytest

clean-venv:
	rm -rf $(VENV)
