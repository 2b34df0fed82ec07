# Set-up and everyday commands. Each target creates or reuses .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xdeepbedmap-installed

.PHONY: install test lint demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch 2.13.0 first: the local CPU build. An unpinned torch would pull CUDA wheels.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check xdeepbedmap tests benchmarks
	$(PY) -m ruff format --check xdeepbedmap tests benchmarks

test: lint
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/xdeepbedmap info --blocks 12 --window 32

bench: $(STAMP)
	$(PY) benchmarks/generator_throughput.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .hypothesis .ruff_cache
