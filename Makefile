# Set-up and everyday commands. Each target creates or reuses .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xdeepbedmap-installed

.PHONY: install test lint demo demo-model demo-model-world demo-model-bed-only demo-ensemble demo-model-v1 demo-ensemble-v1 \
	demo-snapshots-world demo-snapshots-bed-only ablation-snapshots \
	ablation bench clean

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

# The main job on the embedded demo region (world v2: its 1 km bed gridded from
# a synthetic survey whose picks ship with the catalog), with the bundled demo
# ensemble: bed (member mean, blended toward bicubic near the survey picks by
# the ensemble's distance blend) and bed_std (calibrated spread), the
# comparison figure with an uncertainty panel; then the single model (raw and
# blended), the ensemble and bicubic judged against the truth
# (demo-output/evaluation.json, evaluation.png, evaluation_uncertainty.png).
demo: $(STAMP)
	$(VENV)/bin/xdeepbedmap superresolve --catalog demo --chunks 40 --overwrite \
		--ensemble bundled \
		--output demo-output/bed_250m.tif --output demo-output/bed_250m.zarr \
		--figure demo-output/comparison.png --truth
	$(VENV)/bin/xdeepbedmap evaluate --catalog demo --ensemble bundled \
		--json demo-output/evaluation.json --figure demo-output/evaluation.png

# WORLD=v2 trains on the survey-bed, slip-physics world (issue 18; the demo
# region's world): 160 regions of the demo region's size (80 x 80 km: a survey
# gap is capped at 60% of a region's side, so 64 km regions are gappier than
# the demo and a model trained on them leans on the surface where the demo's
# 1 km bed is good), at a 9 km stride, content losses only (no discriminator:
# 2.5x faster on CPU, and RMSE is what the demo is judged by;
# docs/synthetic.md). Epochs are judged on twelve held-out regions, not on
# tiles between training tiles. The demo region (seed 42) is never trained on.
DEMO_MODEL_RUN ?= runs/demo-model
WORLD ?= v2
WORLD_SEEDS ?= 100-259
WORLD_VALIDATION ?= 300-311
WORLD_SHAPE ?= 80x80
WORLD_EPOCHS ?= 6
WORLD_TRAIN := --synthetic $(WORLD_SEEDS) --validation-synthetic $(WORLD_VALIDATION) \
	--synthetic-shape $(WORLD_SHAPE) --stride 36 --synthetic-world $(WORLD) --blocks 4 \
	--batch-size 32 --epochs $(WORLD_EPOCHS) --patience 3 --bed-skip \
	--no-adversarial --seed 0 --half --overwrite
demo-model-world: $(STAMP)
	$(VENV)/bin/xdeepbedmap train $(WORLD_TRAIN) \
		--run-dir $(DEMO_MODEL_RUN)-$(WORLD) --output runs/demo_model_$(WORLD).safetensors

# A snapshot ensemble (issue 18): the last WORLD_SNAPSHOTS epochs' generators of
# a WORLD_SNAPSHOT_EPOCHS-epoch WORLD_TRAIN run; then its distance blend fitted
# on TRUST_SEEDS and its error model on WORLD_CALIBRATION_SEEDS, whole held-out
# regions neither trained on nor used to judge epochs, nor the demo region
# (docs/ablation_v2.md). About 45 min on 2 CPU cores; rerun to resume.
WORLD_SNAPSHOT_EPOCHS ?= 4
WORLD_SNAPSHOTS ?= 4
TRUST_SEEDS ?= 312-323
WORLD_CALIBRATION_SEEDS ?= 324-335
SNAPSHOT_OUTPUT ?= runs/demo_ensemble_$(WORLD)
demo-snapshots-world: $(STAMP)
	$(VENV)/bin/xdeepbedmap train $(WORLD_TRAIN) --epochs $(WORLD_SNAPSHOT_EPOCHS) \
		--snapshots $(WORLD_SNAPSHOTS) --run-dir $(DEMO_MODEL_RUN)-snapshots-$(WORLD) \
		--output $(SNAPSHOT_OUTPUT)
	$(VENV)/bin/xdeepbedmap fit-blend --model $(SNAPSHOT_OUTPUT) \
		--synthetic $(TRUST_SEEDS) --synthetic-shape $(WORLD_SHAPE) \
		--synthetic-world $(WORLD) --overwrite
	$(VENV)/bin/xdeepbedmap calibrate --ensemble $(SNAPSHOT_OUTPUT) \
		--synthetic $(WORLD_CALIBRATION_SEEDS) --synthetic-shape $(WORLD_SHAPE) \
		--synthetic-world $(WORLD)

# The bundled demo ensemble (docs/ensemble.md, docs/survey_blend.md): the v2
# snapshot ensemble above, published into the package with its blend and
# error model. The bundled demo model is its last member (the same file) with
# the blend fitted for it alone (demo_model.blend.json beside it).
demo-ensemble: $(STAMP)
	$(MAKE) demo-snapshots-world WORLD=v2 SNAPSHOT_OUTPUT=xdeepbedmap/data/demo_ensemble
demo-model: demo-ensemble
	cp xdeepbedmap/data/demo_ensemble/member_03.safetensors xdeepbedmap/data/demo_model.safetensors
	$(VENV)/bin/xdeepbedmap fit-blend --model xdeepbedmap/data/demo_model.safetensors \
		--synthetic $(TRUST_SEEDS) --synthetic-shape $(WORLD_SHAPE) --synthetic-world v2 \
		--overwrite

# The world-v1 demo model and ensemble of the first rounds (block-mean 1 km
# bed), kept reproducible for the v1 figures in docs/: into runs/, not the package.
demo-model-v1: $(STAMP)
	$(VENV)/bin/xdeepbedmap train --synthetic 100-107 --synthetic-shape 64x64 --stride 12 \
		--blocks 4 --batch-size 32 --epochs 12 --bed-skip --seed 0 --half --overwrite \
		--run-dir $(DEMO_MODEL_RUN)-v1-gan --output runs/demo_model_v1_gan.safetensors
ENSEMBLE_RUN ?= runs/demo-ensemble
demo-ensemble-v1: $(STAMP)
	$(VENV)/bin/xdeepbedmap train --synthetic 100-115 --synthetic-shape 64x64 --stride 12 \
		--blocks 4 --batch-size 32 --bed-skip --no-adversarial --seed 0 --half \
		--synthetic-world v1 --epochs 4 --members 4 \
		--run-dir $(ENSEMBLE_RUN) --output runs/demo_ensemble_v1
	$(VENV)/bin/xdeepbedmap calibrate --ensemble runs/demo_ensemble_v1 \
		--synthetic 116-123 --synthetic-shape 64x64 --synthetic-world v1

# The same network trained without conditioning (blind inputs): the bed-only
# model the ablation compares against (same seeds, same schedule).
demo-model-bed-only: $(STAMP)
	$(VENV)/bin/xdeepbedmap train $(WORLD_TRAIN) --blind-conditioning \
		--run-dir $(DEMO_MODEL_RUN)-bed-only-$(WORLD) \
		--output runs/demo_model_bed_only_$(WORLD).safetensors

# Ablation of the conditioning inputs on the held-out demo region (docs/ablation_$(WORLD).md)
ABLATION_MODEL ?= runs/demo_model_$(WORLD).safetensors
ablation: $(STAMP)
	$(PY) benchmarks/ablation.py --world $(WORLD) --model $(ABLATION_MODEL) \
		--bed-only-model runs/demo_model_bed_only_$(WORLD).safetensors

# The same for the blended snapshot ensembles of demo-snapshots-world and
# demo-snapshots-bed-only (docs/ablation_v2.md, docs/survey_blend.md)
ablation-snapshots: $(STAMP)
	$(PY) benchmarks/ablation.py --world $(WORLD) --model runs/demo_ensemble_$(WORLD) --blend \
		--bed-only-model runs/demo_ensemble_bed_only_$(WORLD) --bed-only-blend

# asv's quick mode (each benchmark once) in this environment; see docs/performance.md
bench: $(STAMP)
	$(VENV)/bin/asv machine --yes --machine local > /dev/null
	$(VENV)/bin/asv run --python=same --quick --show-stderr --dry-run --machine local

clean:
	rm -rf $(VENV) demo-output .pytest_cache .hypothesis .ruff_cache
