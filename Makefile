# emhub's task runner. `make run` and `make test` are the two set-up commands in README.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format migrations services bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

## The hub on this machine: SQLite, the NetServer simulator, a Celery worker and beat, demo data.
run: $(STAMP)
	$(BIN)/python manage.py run_hub

## The whole suite against PostgreSQL and Redis: ruff, makemigrations --check, pytest.
test: $(STAMP)
	@scripts/ensure_services.sh
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations: $(STAMP)
	$(BIN)/python manage.py makemigrations

services:
	@scripts/ensure_services.sh

bench: $(STAMP)
	@scripts/ensure_services.sh
	@for b in bench/*.py; do echo "== $$b"; DJANGO_SETTINGS_MODULE=emhub.settings.test $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
