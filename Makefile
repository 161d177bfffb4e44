# Two entry points (see README): `make run` and `make test`. Both create the local virtual
# environment .venv from pyproject.toml on first use, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint bench browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/aifactory run

lint: $(STAMP)
	$(BIN)/ruff check sim tests benchmarks
	$(BIN)/ruff format --check sim tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# The suite runs on every CPU (pytest-xdist, `-n auto`: tests/conftest.py counts them); a file's
# tests stay on one worker (`--dist loadfile`), so module fixtures (a Dask cluster, a Jupyter
# kernel) are built once. `.venv/bin/pytest tests/...` alone runs serially, as before.
test: lint browser
	$(BIN)/pytest -n auto --dist loadfile

# Chromium for the headless-browser test of report.html (tests/report/test_browser.py). Idempotent;
# never fails: where it cannot be installed (no apt, not root) that test is skipped with a reason.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq chromium) \
	  || echo "chromium not installable: the browser test will be skipped"

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
