from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

# Deterministic, CI-sized hypothesis runs: no deadline (torch warm-up is slow on 2 cores).
settings.register_profile("ci", deadline=None, max_examples=25, print_blob=True)
settings.load_profile("ci")

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

REFERENCE_DIR = Path(__file__).parent / "data" / "reference"


@pytest.fixture(scope="session")
def reference_weights() -> Path:
    return REFERENCE_DIR / "shared_rrdb3_weights.npz"


@pytest.fixture(scope="session")
def reference_io() -> dict[str, np.ndarray]:
    with np.load(REFERENCE_DIR / "shared_rrdb3_io.npz") as archive:
        return {key: archive[key] for key in archive.files}


def pytest_collection_modifyitems(config, items):
    """Skip (never fail) tests marked ``gpu`` when torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
