# Two commands on a fresh machine: `make demo` and `make test`.
# Everything installs into the project: a virtualenv in .venv, the proxy in node_modules.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROXY := node_modules/.bin/configurable-http-proxy
# Both environments install from the locks in locks/ (one per environment, for every Python the
# package supports), never from setup.cfg's open ranges: `make lock` refreshes them, on purpose.
# uv installs them (hashes checked, ~10 s for ~230 packages with no cache); uv itself comes from
# PyPI through pip, hashed too (locks/uv.txt).
LOCKS := locks
UV := $(BIN)/uv
# uv never fetches a Python of its own: the venvs use $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# the second test pass: what our hub image runs, z2jh 4.4.0's hub with JupyterHub 5.5.4 (the
# security fixes); the rest exactly as z2jh ships it (locks/jh5.in; tests/test_chart.py checks it)
JH5 := .venv-jh5

.PHONY: demo test docs fuzz bench lint clean lock

$(UV): $(LOCKS)/uv.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCKS)/uv.txt
	touch $@

# the lock, then the project itself (editable, its build tools locked too)
$(VENV)/.installed: $(UV) $(LOCKS)/test.txt $(LOCKS)/build.txt setup.cfg pyproject.toml
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes $(LOCKS)/test.txt
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --build-constraints $(LOCKS)/build.txt -e .
	touch $@

$(JH5)/.installed: $(UV) $(LOCKS)/jh5.txt $(LOCKS)/build.txt setup.cfg pyproject.toml
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(JH5)
	$(UV) pip sync --quiet --python $(JH5)/bin/python --require-hashes $(LOCKS)/jh5.txt
	$(UV) pip install --quiet --python $(JH5)/bin/python --no-deps --build-constraints $(LOCKS)/build.txt -e .
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
	@echo "== the tests marked hub_version on $(LOCKS)/jh5.in's JupyterHub 5.5 =="
	$(JH5)/bin/python -m pytest -m hub_version $(PYTEST_PARALLEL)

# the manual (docs/), warnings as errors: docs/_build/html/index.html
docs: $(VENV)/.installed
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# schemathesis, longer than in `make test`: FUZZ_EXAMPLES generated cases per operation
FUZZ_EXAMPLES ?= 1000
fuzz: $(VENV)/.installed $(PROXY)
	NOTEBOOKS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_openapi.py

# the service side by side with the Hub's own API: ratios, not absolute times (docs/benchmarks.rst);
# then what a request costs the Hub at 20, 200 and 2,000 users (S; SCALE_ARGS="--sizes 20 200" is quicker)
bench: $(VENV)/.installed $(PROXY)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/run.py $(BENCH_ARGS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/scale.py $(SCALE_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check notebooks_service tests benchmarks
	$(BIN)/ruff format --check notebooks_service tests benchmarks

clean:
	rm -rf $(VENV) $(JH5) node_modules .demo docs/_build

# Refresh every lock from setup.cfg's ranges and locks/*.in, on purpose (docs/development.rst):
# universal (every Python from 3.10 and every platform), with hashes. LOCK_ARGS for more, e.g.
# LOCK_ARGS="--upgrade-package tornado" to move one package, or "--upgrade" for all.
# The hub image moves only these from z2jh's pins: JupyterHub (to 5.5.4, the advisories) and PyJWT
# (setup.cfg's >=2.15, the JWKS refetch cooldown the claims policy relies on).
HUB_IMAGE_UPGRADES := jupyterhub pyjwt
LOCK := $(UV) pip compile --quiet --universal --generate-hashes --python-version 3.10 $(LOCK_ARGS)
lock: $(UV)
	$(UV) pip compile --quiet --generate-hashes $(LOCK_ARGS) $(LOCKS)/uv.in -o $(LOCKS)/uv.txt
	$(LOCK) $(LOCKS)/build.in -o $(LOCKS)/build.txt
	$(LOCK) setup.cfg --extra test --extra bench -o $(LOCKS)/test.txt
	$(LOCK) setup.cfg $(LOCKS)/jh5.in --extra test -o $(LOCKS)/jh5.txt
	$(LOCK) setup.cfg -o $(LOCKS)/service.txt
	@# the hub image: z2jh's own lock as constraints, but for what we upgrade on purpose
	grep -v -E '^($(subst $() ,|,$(HUB_IMAGE_UPGRADES)))==' $(LOCKS)/z2jh-4.4.0-hub-image.txt > $(LOCKS)/.z2jh-constraints.txt
	$(UV) pip compile --quiet --universal --generate-hashes --python-version 3.12 $(LOCK_ARGS) \
	    -c $(LOCKS)/.z2jh-constraints.txt setup.cfg $(LOCKS)/hub-image.in -o $(LOCKS)/hub-image.txt
	rm $(LOCKS)/.z2jh-constraints.txt
