# Common tasks. `make run` and `make test` do their own set-up (virtualenv, install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Installs come from the lock: requirements/dev.txt, exact versions with hashes, exported from
# uv.lock by `make lock`. The virtualenv is redone only when the lock or pyproject.toml change.
LOCK := requirements/dev.txt

.PHONY: install system-packages run worker test test-fast lint format typecheck layers check \
	clean lock lock-upgrade lock-check deploy-checks image-check new-service

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@# A dependency added to pyproject.toml but not locked shows here: run `make lock`.
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP) ## create the virtualenv and install the project with its dev tools

lock: ## update uv.lock and requirements/*.txt after a change of pyproject.toml
	bash .ci/lock.sh

lock-upgrade: ## the same, taking the newest versions pyproject.toml allows
	UPGRADE=1 bash .ci/lock.sh

lock-check: ## fail if uv.lock or requirements/*.txt are stale
	bash .ci/lock.sh --check

# Development mode: requests from this machine need no credentials (never set in a deployment).
run: install ## start the service (API, embedded worker and scheduler) on http://127.0.0.1:8000
	APP_AUTH__ALLOW_ANONYMOUS_LOCALHOST=$${APP_AUTH__ALLOW_ANONYMOUS_LOCALHOST:-true} $(BIN)/jobs-service serve

worker: install ## run a worker process only
	$(BIN)/jobs-service worker

# e.g. make new-service NAME=billing DEST=../billing ARGS="--backend postgresql --no-dashboard"
new-service: install ## make a new microservice from this template (docs/new-service.md)
	@test -n "$(NAME)" -a -n "$(DEST)" || { echo "usage: make new-service NAME=billing DEST=../billing [ARGS=...]"; exit 2; }
	$(BIN)/jobs-service new-service "$(NAME)" --dest "$(DEST)" $(ARGS)

system-packages: ## unixODBC, the MariaDB ODBC driver and Chromium for the tests (apt-get, if missing)
	@bash .ci/system-packages.sh

test: install system-packages ## run the test suite
	$(BIN)/pytest

# The inner loop: unit tests and the contract suites on memory and SQLite only (no servers).
FAST_TESTS := tests/unit tests/contract -k "not postgresql and not mariadb and not mssql"

test-fast: install ## unit and contract tests on memory and SQLite, under a minute
	$(BIN)/pytest $(FAST_TESTS)

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

deploy-checks: ## offline checks of docker/, compose.yaml and k8s/ (docs/deployment.md)
	bash .ci/deploy-checks.sh

image-check: ## build the image and run it against the local PostgreSQL (needs a Docker engine)
	bash .ci/image-check.sh

check: lint typecheck layers test deploy-checks ## everything CI runs (but the image check)

clean:
	rm -rf $(VENV) .venv-tools .mypy_cache .ruff_cache .pytest_cache
