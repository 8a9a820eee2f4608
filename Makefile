# Two commands on a fresh machine: `make demo` and `make test`.
# Everything installs into the project: a virtualenv in .venv, the proxy in node_modules.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROXY := node_modules/.bin/configurable-http-proxy

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(PROXY): package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	touch $@

demo: $(VENV)/.installed $(PROXY)
	$(BIN)/notebooks-service demo

test: $(VENV)/.installed $(PROXY)
	$(BIN)/python -m pytest

# the service side by side with the Hub's own API: ratios, not absolute times (docs/benchmarks.rst)
$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed $(PROXY)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/run.py $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check notebooks_service tests benchmarks
	$(BIN)/ruff format --check notebooks_service tests benchmarks

clean:
	rm -rf $(VENV) node_modules .demo
