# NeoMesh: `make run` starts everything on embedded defaults; `make test` runs the whole suite.
# Both set up what they need first (virtualenv, packages, Chromium for the browser tests).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup chromium services run test bench lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The test peers installed from the npm registry (a real OpenID Connect provider), from the lockfile.
OIDC_PEER := tests/peers/oidc
$(OIDC_PEER)/node_modules/.installed-stamp: $(OIDC_PEER)/package.json $(OIDC_PEER)/package-lock.json
	cd $(OIDC_PEER) && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	touch $@

setup: $(STAMP) $(OIDC_PEER)/node_modules/.installed-stamp

# Debian's Chromium for Playwright (a browser download by Playwright itself cannot work here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL and Redis for the scale-out tests (tests.services starts private instances).
services:
	@{ ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1; } || { \
	  echo "Installing Debian's postgresql and redis-server for the scale-out tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql redis-server >/dev/null; }

run: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_demo_alerts
	$(BIN)/python manage.py seed_onboarding_demo --plan --realistic
	$(BIN)/python manage.py seed_demo_conformance
	$(BIN)/python manage.py run_local

# Phase 1: the whole suite on the embedded defaults (SQLite, ORM broker).
# Its SQLite test database is made from the models (--no-migrations: 5 s, not 40 s): the check above
# proves the migrations match them, the browser journeys and run_local tests migrate a fresh
# database, and phase 2 migrates PostgreSQL.
# Phase 2: every test that uses the database again on PostgreSQL + Redis (not meshcore, which has
# none; not the browser journeys; not the tests pytest-django keeps off the database, which run the
# same on any engine: --database-tests-only in tests/conftest.py), plus the two-cluster kill test.
# pytest exits 5 when it collects nothing: that is a failure here, never a pass.
PYTEST = $(BIN)/python -m pytest
test: setup chromium services
	$(BIN)/python manage.py makemigrations --check --dry-run >/dev/null || { echo "Model changes without migrations: run makemigrations."; exit 1; }
	$(PYTEST) --no-migrations $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing."; exit 1; fi; [ $$rc -eq 0 ] || exit $$rc
	$(BIN)/python -m tests.services -- $(PYTEST) -m "not browser" --database-tests-only tests --ignore=tests/meshcore; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no PostgreSQL tests: failing."; exit 1; fi; exit $$rc

bench: setup services
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var $(OIDC_PEER)/node_modules
