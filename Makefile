# Every target creates .venv on first use; nothing is installed outside it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-workers clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/scalesearch run --budget 2x
	$(BIN)/scalesearch plot

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check scalesearch tests benchmarks
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/scalesearch bench

bench-workers: $(STAMP)
	$(BIN)/python benchmarks/workers.py

clean:
	rm -rf $(VENV) .pytest_cache
