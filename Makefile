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

# The second pass repeats the database- and Redis-facing tests on real PostgreSQL and Redis when they answer.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
export TEST_DATABASE_URL TEST_REDIS_URL

test: $(STAMP)
	$(BIN)/python -m pytest
	@if $(BIN)/python -m tests.services; then \
	  echo "== again on PostgreSQL ($(TEST_DATABASE_URL)) and Redis ($(TEST_REDIS_URL))"; \
	  DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -m "not browser and not slow" tests/console tests/labsteps tests/dashboard tests/demo; \
	else echo "== PostgreSQL or Redis not reachable: second pass skipped"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sandbox: $(STAMP)
	mkdir -p var
	$(BIN)/python -m sandbox --kubeconfig var/kubeconfig --state-dir var/sandbox

# Each benchmark prints its figures; see the docstring at the top of each script for its targets.
BENCHMARKS := sandbox_lab sandbox_scale mesh_path mesh_scale http1_proxy telemetry_record mtls_handshake \
	apply_deploy_step step_page_weight graph_build graph_page_weight traffic_rate traffic_stream \
	dashboard_page dashboard_fanout demo_fault traffic_chart_render

bench: $(STAMP)
	@for b in $(BENCHMARKS); do echo "== $$b"; $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
