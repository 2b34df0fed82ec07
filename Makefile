# Set-up and everyday commands. Each target creates or reuses .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xdeepbedmap-installed

.PHONY: install test lint demo demo-model bench clean

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

# The main job on the embedded demo region, with the bundled demo model.
demo: $(STAMP)
	$(VENV)/bin/xdeepbedmap superresolve --catalog demo --chunks 40 --overwrite \
		--output demo-output/bed_250m.tif --output demo-output/bed_250m.zarr \
		--figure demo-output/comparison.png --truth
	$(VENV)/bin/xdeepbedmap evaluate --catalog demo --json demo-output/evaluation.json

# Retrain the bundled demo model (about 40 min on 2 CPU cores; rerun to resume).
# Seeds 100-107 only: the demo region (seed 42) stays held out for evaluation.
DEMO_MODEL_RUN ?= runs/demo-model
demo-model: $(STAMP)
	$(VENV)/bin/xdeepbedmap train --synthetic 100-107 --synthetic-shape 64x64 --stride 12 \
		--blocks 4 --batch-size 32 --epochs 12 --bed-skip --seed 0 --half --overwrite \
		--run-dir $(DEMO_MODEL_RUN) --output xdeepbedmap/data/demo_model.safetensors

# asv's quick mode (each benchmark once) in this environment; see docs/performance.md
bench: $(STAMP)
	$(VENV)/bin/asv machine --yes --machine local > /dev/null
	$(VENV)/bin/asv run --python=same --quick --show-stderr --dry-run --machine local

clean:
	rm -rf $(VENV) demo-output .pytest_cache .hypothesis .ruff_cache
