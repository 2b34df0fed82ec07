"""The demo ensemble shipped with the package: complete, calibrated on held-out regions, small."""

from __future__ import annotations

from xdeepbedmap.ensemble import BUNDLED_ENSEMBLE, read_ensemble
from xdeepbedmap.synthetic import WORLDS


def test_bundled_ensemble_is_complete_and_calibrated_on_held_out_regions():
    ensemble = read_ensemble(BUNDLED_ENSEMBLE)  # digests of all members checked
    assert len(ensemble.members) == 4
    assert len({spec.digest for spec in ensemble.members}) == 4
    assert ensemble.calibration is not None and ensemble.std_scale > 1
    # fitted on seeds none of the members trained on, nor the demo region (42)
    assert "synthetic seeds 116-123" in ensemble.calibration.fitted_on
    trained = ensemble.metadata["data"]["training_data"]
    assert trained["synthetic_seeds"] == "100-115" and trained["synthetic_world"] in WORLDS
    size = sum((BUNDLED_ENSEMBLE / f"member_{k:02d}.safetensors").stat().st_size for k in range(4))
    assert size < 25.5e6
