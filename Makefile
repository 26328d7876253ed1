# One entry per common task; every target sets up .venv itself on a fresh machine.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: install run test check-defs lint format typecheck dev simulate bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the main job locally on the committed samples and print the Gold tables.
run: install
	GRID_ENV=local GRID_LANDING_DIR=$(CURDIR)/data/samples $(BIN)/grid run

## The whole test suite (Spark tier included; Databricks-live tests skip without credentials).
test: install
	$(BIN)/pytest -q -ra

## The code location loads and validates (the dg CLI; what CI runs before the tests).
check-defs: install
	GRID_ENV=local VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs

## ruff over every Python file of the repository (.venv and build output excluded by ruff).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## pyright on the packages listed in pyproject.toml ([tool.pyright] include).
typecheck: install
	$(BIN)/pyright

## The Dagster UI on the same local lakehouse as `make run` (http://127.0.0.1:3000).
dev: install
	GRID_ENV=local GRID_LANDING_DIR=$${GRID_LANDING_DIR:-$(CURDIR)/data/samples} \
		$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## Generate fresh GRID traffic into data/landing and run the pipeline on it.
simulate: install
	$(BIN)/grid simulate --out data/landing --events 20000 --clean

## Throughput and peak memory of `grid run` vs pure DuckDB SQL (see README).
bench: install
	$(BIN)/grid bench --events 10000 100000 1000000 3000000

clean:
	rm -rf data/lakehouse data/bench .pytest_cache
