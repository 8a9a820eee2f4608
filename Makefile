# Two commands on a fresh machine: `make demo` and `make test`.
# Everything installs into the project: a virtualenv in .venv, the proxy in node_modules.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROXY := node_modules/.bin/configurable-http-proxy
# the second test pass: what our hub image runs, z2jh 4.4.0's hub with JupyterHub 5.5.4 (the
# security fixes); the rest exactly as z2jh ships it (tests/test_chart.py checks both)
JH5 := .venv-jh5
JH5_PINS := jupyterhub==5.5.4 jupyterhub-kubespawner==7.0.0 jupyterhub-idle-culler==1.4.0 pycurl==7.46.0
# the demo's servers show the workspace's bucket beside their files as the platform's images do;
# without its declared dependencies, which are its own test tools (see setup.cfg, demo)
HYBRIDCONTENTS := hybridcontents==0.4.0

.PHONY: demo test docs fuzz bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps $(HYBRIDCONTENTS)
	touch $@

$(JH5)/.installed: setup.cfg pyproject.toml Makefile
	$(PYTHON) -m venv $(JH5)
	$(JH5)/bin/pip install --quiet --upgrade pip
	$(JH5)/bin/pip install --quiet -e '.[test]' $(JH5_PINS)
	$(JH5)/bin/pip install --quiet --no-deps $(HYBRIDCONTENTS)
	touch $@

$(PROXY): package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	touch $@

# `make demo PORT=8001`; DEMO_ARGS for more, e.g. DEMO_ARGS="--allow-origin http://localhost:8001"
PORT ?= 8000
demo: $(VENV)/.installed $(PROXY)
	$(BIN)/notebooks-service demo --port $(PORT) $(DEMO_ARGS)

# the whole suite on JupyterHub 6.x, then the tests whose outcome depends on the Hub's version
# (marked hub_version) on JupyterHub 5.5 (z2jh 4.4.0). Each pass runs its modules on TEST_WORKERS
# processes (pytest-xdist, a module per worker at a time): the tests mostly wait on Hubs, proxies
# and servers, so three keep two cores busy. `make test TEST_WORKERS=0` runs them in this process.
TEST_WORKERS ?= 3
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile)
test: $(VENV)/.installed $(JH5)/.installed $(PROXY) docs
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)
	@echo "== the tests marked hub_version on $(JH5_PINS) =="
	$(JH5)/bin/python -m pytest -m hub_version $(PYTEST_PARALLEL)

# the manual (docs/), warnings as errors: docs/_build/html/index.html
docs: $(VENV)/.installed
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# schemathesis, longer than in `make test`: FUZZ_EXAMPLES generated cases per operation
FUZZ_EXAMPLES ?= 1000
fuzz: $(VENV)/.installed $(PROXY)
	NOTEBOOKS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_openapi.py

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
	rm -rf $(VENV) $(JH5) node_modules .demo docs/_build
