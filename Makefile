# MeshConsole: `make run` starts everything on this machine; `make test` runs the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench sandbox clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m meshconsole.run

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sandbox: $(STAMP)
	mkdir -p var
	$(BIN)/python -m sandbox --kubeconfig var/kubeconfig --state-dir var/sandbox

bench: $(STAMP)
	$(BIN)/python benchmarks/sandbox_lab.py
	$(BIN)/python benchmarks/sandbox_scale.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
