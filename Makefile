# Two commands: `make run` starts the platform, `make test` runs lint and the test suite (Chromium for its
# browser tests and espeak-ng for the narrated video reports are installed with apt-get when run as root, else it
# says how, before any test runs).
PYTHON ?= python3
# Test processes: every one has its own database, servers and browser, so files run in parallel (`-n 1`: serially).
TEST_PROCESSES ?= auto
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run dev demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/northstar run

dev: $(VENV)/.runtime
	$(BIN)/northstar dev

# A demo organization for the console (Stripe metrics, a social proof site, a dataset), in the database `make run` uses.
demo: $(VENV)/.runtime
	$(BIN)/northstar seed --demo

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy northstar
	$(BIN)/lint-imports

test: lint
	.ci/chromium
	.ci/espeak
	$(BIN)/pytest -q -n $(TEST_PROCESSES) --dist loadfile

bench: $(VENV)/.dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .northstar
