# Common tasks. `make run` and `make test` do their own set-up (virtualenv, install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-packages run worker test lint format typecheck layers check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create the virtualenv and install the project with its dev tools

# Development mode: requests from this machine need no credentials (never set in a deployment).
run: install ## start the service (API, embedded worker and scheduler) on http://127.0.0.1:8000
	APP_AUTH__ALLOW_ANONYMOUS_LOCALHOST=$${APP_AUTH__ALLOW_ANONYMOUS_LOCALHOST:-true} $(BIN)/jobs-service serve

worker: install ## run a worker process only
	$(BIN)/jobs-service worker

system-packages: ## unixODBC, the MariaDB ODBC driver and Chromium for the tests (apt-get, if missing)
	@bash .ci/system-packages.sh

test: install system-packages ## run the test suite
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

typecheck: install
	$(BIN)/mypy

layers: install
	$(BIN)/lint-imports

check: lint typecheck layers test ## everything CI runs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
