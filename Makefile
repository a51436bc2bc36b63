# The few commands a developer runs daily. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SDK3_VENV := .venv-sdk3

.PHONY: serve install test lint unit bench system-deps bench-identities

$(BIN)/isthmus: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

# The test tools, and a second environment where the seeds' own 3.x code runs (tests/sdk3).
$(VENV)/.test-deps: pyproject.toml tests/sdk3/requirements.txt $(BIN)/isthmus
	$(BIN)/pip install --quiet -e '.[test]'
	$(PYTHON) -m venv $(SDK3_VENV) && $(SDK3_VENV)/bin/pip install --quiet -r tests/sdk3/requirements.txt
	touch $@

install: $(BIN)/isthmus

## Install and start the platform on SQLite in ~/.isthmus (or $ISTHMUS_DATA_DIR).
serve: $(BIN)/isthmus
	$(BIN)/isthmus serve $(ARGS)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/mypy

## Install the test dependencies (Python and Debian), lint, and run the whole suite.
test: lint system-deps
	scripts/run-tests

system-deps:
	scripts/system-deps

bench: $(VENV)/.test-deps
	$(BIN)/python benchmarks/oauth_throughput.py $(ARGS)

bench-identities: $(VENV)/.test-deps
	$(BIN)/python benchmarks/identities_latency.py $(ARGS)
