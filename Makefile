# The README's two commands: `make demo` (the whole product end to end) and `make test`.
# Each target sets itself up: a .venv with the pinned package (and the beam extra, so the
# Beam preprocessing tests run), then acts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,beam]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vdg demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) saved_models/demo .pytest_cache
