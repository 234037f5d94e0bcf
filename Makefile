# emhub's task runner. `make run` and `make test` are the two set-up commands in README.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lock lint format migrations services bench clean

# Installs exactly what requirements/dev.txt pins, each file checked against its hash;
# the project itself goes in editable, built with the locked setuptools.
LOCK_RUNTIME := requirements/runtime.txt
LOCK_DEV := requirements/dev.txt
COMPILE := $(BIN)/uv pip compile pyproject.toml requirements/build.in --universal \
	--python-version 3.11 --generate-hashes --custom-compile-command "make lock" --quiet

$(STAMP): $(LOCK_DEV) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK_DEV)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

## The hub on this machine: SQLite, the NetServer simulator, a Celery worker and beat, demo data.
run: $(STAMP)
	$(BIN)/python manage.py run_hub

## The whole suite: ruff, makemigrations --check, pytest on PostgreSQL and Redis, then the
## tests marked both_databases again on SQLite and the filesystem broker (the embedded default).
test: $(STAMP)
	@scripts/ensure_services.sh
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)
	@# Exit 5 is pytest's "nothing collected": a PYTEST_ARGS that names no such test.
	$(BIN)/pytest --ds=emhub.settings.test_sqlite -m both_databases $(PYTEST_ARGS) \
		|| [ $$? -eq 5 ]

## Pin every dependency of pyproject.toml with its hashes (after adding or changing one);
## `make lock UPGRADE=--upgrade` moves every pin to the newest allowed version.
lock: $(STAMP)
	$(COMPILE) $(UPGRADE) -o $(LOCK_RUNTIME)
	$(COMPILE) $(UPGRADE) --extra dev -c $(LOCK_RUNTIME) -o $(LOCK_DEV)

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

## The benchmarks of the engine, ingest, clicks, panels, the SOAP client and fairness, each at
## its short sizes, then one table of every figure with its target (bench/run_all.py);
## `make bench BENCH_ARGS="--only clicks"` runs some, `BENCH_ARGS=--full` the full sizes.
## The other benches in bench/ are run by hand (each says how in its docstring).
bench: $(STAMP)
	@scripts/ensure_services.sh
	DJANGO_SETTINGS_MODULE=emhub.settings.test $(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
