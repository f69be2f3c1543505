# The two README commands are `make demo` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DBT_PROFILES_DIR := $(CURDIR)
export CONVOPT_WAREHOUSE ?= warehouse/convopt.duckdb
export CONVOPT_LANDING ?= data/landing
DEMO_PERSONS ?= 3000
DEMO_DAYS ?= 60
# pytest workers for `make test` (pytest-xdist); each test module runs whole on one worker
# (tests/conftest.py keeps the modules that share the demo_run warehouse together).
TEST_WORKERS ?= 2

.PHONY: demo test venv dev build lint format bench bench-engines bench-build bench-api clean

## demo: set up, generate demo data (once), then `convopt run`: ingest, dbt build, export-meta (dry run), report
demo: $(BIN)/convopt $(CONVOPT_LANDING)/.generated
	$(BIN)/convopt run --landing $(CONVOPT_LANDING)

## test: set up with dev tools, lint (ruff + sqlfluff), run the whole suite
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

venv: $(BIN)/convopt
dev: $(VENV)/.dev-installed

$(BIN)/convopt: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(BIN)/convopt $@

# Demo data is generated once: rerunning `make demo` ingests nothing new (files are content-hashed)
# instead of landing a second, different data set for a later "today".
$(CONVOPT_LANDING)/.generated: | $(BIN)/convopt
	$(BIN)/convopt generate --out $(CONVOPT_LANDING) --persons $(DEMO_PERSONS) --days $(DEMO_DAYS) --bad-rows-ratio 0.002
	touch $@

build: venv
	$(BIN)/dbt build --profiles-dir . --project-dir .

# sqlfluff's dbt templater compiles the project: point it at a scratch file, not the warehouse.
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	CONVOPT_WAREHOUSE=target/sqlfluff.duckdb $(BIN)/sqlfluff lint --processes 2 models data-tests

format: dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python benchmarks/generate_ingest.py

# DuckDB vs PostgreSQL (a throwaway server from the Debian binaries), 1M events; see BENCHMARKS.md.
bench-engines: dev
	$(BIN)/python benchmarks/engines.py --events 1000000 --write

# The scheduled build at 1M events, full and then incremental after 1 % more; see BENCHMARKS.md.
bench-build: dev
	$(BIN)/python benchmarks/build.py --events 1000000

# convopt serve under load: single rows, batches of 1,000, kill -9; see BENCHMARKS.md.
bench-api: venv
	$(BIN)/python benchmarks/api.py --write

clean:
	rm -rf target logs dbt_packages warehouse data reports .pytest_cache
