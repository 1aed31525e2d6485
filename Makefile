# The front door. `make report` and `make test` each build .venv first when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE := data/events.parquet data/experiment.parquet data/predictions.parquet

.PHONY: help venv data report test lint format lab bench clean

help:
	@echo "make report   run every report in reports.yml into reports/ (sample data made if missing)"
	@echo "make test     ruff + the whole pytest suite (unit tests and nbval on notebooks/)"
	@echo "make lab      JupyterLab on notebooks/ with the project's environment"
	@echo "make data     regenerate the sample data under data/"
	@echo "make format   ruff format + fixes"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (aipm-nb)" >/dev/null
	touch $(STAMP)

$(SAMPLE): | $(STAMP)
	$(BIN)/aipm-nb data

data: $(STAMP)
	$(BIN)/aipm-nb data

report: $(STAMP) | $(SAMPLE)
	$(BIN)/aipm-nb run reports.yml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint | $(SAMPLE)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
