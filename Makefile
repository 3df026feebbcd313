# The README's two commands: `make demo` (the whole product end to end) and `make test`.
# Each target sets itself up: a .venv with the pinned package (and the beam extra, so the
# Beam preprocessing tests run), then acts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,beam]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vdg demo

# the suite CI runs (about 12 minutes on 2 cores): everything but the tests marked slow
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile -m "not slow"

# every test, the slow ones too (whole pipelines, two training workers, Beam over 50 clips,
# a MediaPipe venv): about an hour on 2 cores
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) saved_models/demo .pytest_cache
