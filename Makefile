# Set-up and everyday commands. Each target creates or reuses .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xdeepbedmap-installed

.PHONY: install test lint demo demo-model demo-model-world demo-model-bed-only demo-ensemble \
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

# The main job on the embedded demo region, with the bundled demo ensemble:
# bed (mean) and bed_std (calibrated spread), the comparison figure with an
# uncertainty panel, and the single model, the ensemble and bicubic judged
# against the truth (evaluation.json, demo-output/evaluation_uncertainty.png).
demo: $(STAMP)
	$(VENV)/bin/xdeepbedmap superresolve --catalog demo --chunks 40 --overwrite \
		--ensemble bundled \
		--output demo-output/bed_250m.tif --output demo-output/bed_250m.zarr \
		--figure demo-output/comparison.png --truth
	$(VENV)/bin/xdeepbedmap evaluate --catalog demo --ensemble bundled \
		--json demo-output/evaluation.json --figure demo-output/evaluation.png

# Retrain the bundled demo model (about 40 min on 2 CPU cores; rerun to resume).
# Seeds 100-107 only: the demo region (seed 42) stays held out for evaluation.
DEMO_MODEL_RUN ?= runs/demo-model
demo-model: $(STAMP)
	$(VENV)/bin/xdeepbedmap train --synthetic 100-107 --synthetic-shape 64x64 --stride 12 \
		--blocks 4 --batch-size 32 --epochs 12 --bed-skip --seed 0 --half --overwrite \
		--run-dir $(DEMO_MODEL_RUN) --output xdeepbedmap/data/demo_model.safetensors

# WORLD=v2 retrains on the survey-bed, slip-physics world (issue 18): 160
# regions of the demo region's size (80 x 80 km: a survey gap is capped at 60%
# of a region's side, so 64 km regions are gappier than the demo and a model
# trained on them leans on the surface where the demo's 1 km bed is good), at
# a 9 km stride, content losses only (no discriminator: 2.5x faster on CPU,
# and RMSE is what the demo is judged by; docs/synthetic.md). The best epoch
# is picked on twelve held-out regions, not on tiles between training tiles.
# Then make v2 the default world (synthetic.WORLDS, make_region) and
# regenerate the demo catalog with catalog.write_demo_data.
WORLD ?= v1
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
# regions neither trained on nor used to pick epochs, nor the demo region
# (docs/ablation_v2.md). Rerun to resume.
WORLD_SNAPSHOT_EPOCHS ?= 4
WORLD_SNAPSHOTS ?= 4
TRUST_SEEDS ?= 312-323
WORLD_CALIBRATION_SEEDS ?= 324-335
demo-snapshots-world: $(STAMP)
	$(VENV)/bin/xdeepbedmap train $(WORLD_TRAIN) --epochs $(WORLD_SNAPSHOT_EPOCHS) \
		--snapshots $(WORLD_SNAPSHOTS) --run-dir $(DEMO_MODEL_RUN)-snapshots-$(WORLD) \
		--output runs/demo_ensemble_$(WORLD)
	$(VENV)/bin/xdeepbedmap fit-blend --model runs/demo_ensemble_$(WORLD) \
		--synthetic $(TRUST_SEEDS) --synthetic-shape $(WORLD_SHAPE) \
		--synthetic-world $(WORLD) --overwrite
	$(VENV)/bin/xdeepbedmap calibrate --ensemble runs/demo_ensemble_$(WORLD) \
		--synthetic $(WORLD_CALIBRATION_SEEDS) --synthetic-shape $(WORLD_SHAPE) \
		--synthetic-world $(WORLD)

# The bed-only network trained the same way (blind conditioning), with its own blend.
demo-snapshots-bed-only: $(STAMP)
	$(VENV)/bin/xdeepbedmap train $(WORLD_TRAIN) --epochs $(WORLD_SNAPSHOT_EPOCHS) \
		--blind-conditioning --snapshots $(WORLD_SNAPSHOTS) \
		--run-dir $(DEMO_MODEL_RUN)-snapshots-bed-only-$(WORLD) \
		--output runs/demo_ensemble_bed_only_$(WORLD)
	$(VENV)/bin/xdeepbedmap fit-blend --model runs/demo_ensemble_bed_only_$(WORLD) \
		--synthetic $(TRUST_SEEDS) --synthetic-shape $(WORLD_SHAPE) \
		--synthetic-world $(WORLD) --blind-conditioning --overwrite

# The bundled demo ensemble (docs/ensemble.md): four members of the demo model's
# network, seeds 0-3 on bootstrap resamples of the WORLD_TRAIN tiles of the demo's
# world (v1 until the demo moves to v2, issue 18), float16, calibrated on the
# held-out regions CALIBRATION_SEEDS (whole regions, as bed_std is used). Rerun to resume (finished members are skipped); the member
# runs stay under runs/, out of the package. --overwrite is left out so that a
# folder trained with other options is refused (pass --restart to start it over).
ENSEMBLE_EPOCHS ?= 4
ENSEMBLE_WORLD ?= v1
ENSEMBLE_RUN ?= runs/demo-ensemble
# held out from training (100-115) and from the demo region (42): the spread factor
CALIBRATION_SEEDS ?= 116-123
# the options the bundled (v1) ensemble was trained with
ENSEMBLE_TRAIN := --synthetic 100-115 --synthetic-shape 64x64 --stride 12 --blocks 4 \
	--batch-size 32 --bed-skip --no-adversarial --seed 0 --half
demo-ensemble: $(STAMP)
	$(VENV)/bin/xdeepbedmap train $(ENSEMBLE_TRAIN) \
		--synthetic-world $(ENSEMBLE_WORLD) --epochs $(ENSEMBLE_EPOCHS) --members 4 \
		--run-dir $(ENSEMBLE_RUN) --output xdeepbedmap/data/demo_ensemble
	$(VENV)/bin/xdeepbedmap calibrate --ensemble xdeepbedmap/data/demo_ensemble \
		--synthetic $(CALIBRATION_SEEDS) --synthetic-shape 64x64 \
		--synthetic-world $(ENSEMBLE_WORLD)

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
