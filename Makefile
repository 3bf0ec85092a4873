# OMS: `make run` serves a demo on http://127.0.0.1:8000/, `make test` runs the suite (PostgreSQL + Redis).
# Everything runs from this folder with the virtualenv in .venv; the project itself is not pip-installed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The test suite's defaults; both can be overridden from the environment.
TEST_DATABASE_URL := postgres://postgres@127.0.0.1:5432/oms
TEST_REDIS_URL := redis://127.0.0.1:6379/0
# Extra arguments: make test ARGS="-k idempotency -x", make bench ARGS="--orders 500".
ARGS ?=
# pytest-xdist processes for `make test` (0 = no xdist).
TEST_WORKERS ?= 2

.PHONY: help venv install run test preflight browser lint bench bench-cockpit clean

help:
	@echo "make run     install, migrate, create roles and demo data, serve on http://127.0.0.1:8000/"
	@echo "make test    run the test suite (needs PostgreSQL and Redis; see README.md)"
	@echo "make lint    ruff check + ruff format --check + import-linter (the chain of apps)"
	@echo "make bench   order intake benchmark (bench/intake.py; needs PostgreSQL and Redis)"
	@echo "make bench-cockpit  cockpit pages on 1,000,000 orders (bench/cockpit.py; needs PostgreSQL)"
	@echo "make clean   remove var/ (the embedded database) and .venv"

venv install: $(STAMP)

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "$(PYTHON) was not found. The OMS needs Python 3.11 (Debian 12: apt-get install python3 python3-venv)."; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "The OMS needs Python 3.11, but $(PYTHON) is $$($(PYTHON) -V 2>&1)."; \
	  echo "Install Python 3.11 and run e.g.: make PYTHON=python3.11 $(MAKECMDGOALS)"; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "$(PYTHON) cannot create virtualenvs (no ensurepip). Debian: apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when requirements.lock is newer than the stamp.
$(STAMP): requirements.lock | $(PY)
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "$(VENV) was made with $$($(PY) -V 2>&1), not Python 3.11. Remove it (make clean) and retry."; exit 1; }
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements.lock
	@touch $(STAMP)

# The environment is passed through: with DATABASE_URL / CELERY_BROKER_URL (or REDIS_URL) set, they are
# used; with nothing set, SQLite in var/ and Celery tasks run in-process. Safe to run again.
# The development settings (DEBUG, the public development key) are chosen here, explicitly: manage.py,
# oms.wsgi and oms.celery default to production's.
run: export DJANGO_SETTINGS_MODULE ?= oms.settings.dev
run: $(STAMP)
	mkdir -p "$${OMS_VAR_DIR:-var}"
	$(PY) manage.py migrate --noinput
	$(PY) manage.py sync_roles
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver 127.0.0.1:8000

test: export DATABASE_URL ?= $(TEST_DATABASE_URL)
test: $(STAMP) browser preflight
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(ARGS)

# Says plainly when PostgreSQL or Redis cannot be reached (the same check runs in tests/conftest.py).
preflight: export DATABASE_URL ?= $(TEST_DATABASE_URL)
preflight: $(STAMP)
	@REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" $(PY) tests/conftest.py

# Browser tests drive Debian's chromium. Installed when missing and we are root with apt-get.
browser:
	@if [ -x /usr/bin/chromium ]; then \
	  true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update && apt-get install -y chromium; \
	else \
	  echo "WARNING: the browser tests need Debian's chromium (/usr/bin/chromium), which is missing."; \
	  echo "         Install it as root: apt-get update && apt-get install -y chromium"; \
	fi

# ruff (style, and PLC0415: no import below a module's top without a commented reason), then
# import-linter: the one-way chain of apps and models that import no services or faces (pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) bench/intake.py $(ARGS)

bench-cockpit: $(STAMP)
	$(PY) bench/cockpit.py $(ARGS)

clean:
	rm -rf var $(VENV)
