"""The demo model and ensemble shipped with the package, judged on the held-out demo region.

Both are world v2 (the demo region's world): the ensemble is the last four
epochs' generators of one run (a snapshot ensemble), the model its last
member. Their distance blends and the ensemble's error model were fitted on
whole held-out regions (seeds 312-323 and 324-335), never on the demo region.
"""

from __future__ import annotations

import pytest

from xdeepbedmap.catalog import DEMO_SEED, DEMO_WORLD
from xdeepbedmap.cli._args import parse_seeds
from xdeepbedmap.ensemble import BUNDLED_ENSEMBLE, read_ensemble
from xdeepbedmap.model_store import BUNDLED_MODEL


def _seeds(text: str) -> set[int]:
    return set(parse_seeds(text))


def test_bundled_ensemble_is_complete_blended_and_fitted_on_held_out_regions():
    ensemble = read_ensemble(BUNDLED_ENSEMBLE)  # digests of all members checked
    assert len(ensemble.members) == 4
    assert len({spec.digest for spec in ensemble.members}) == 4
    trained = ensemble.metadata["data"]["training_data"]
    assert trained["synthetic_world"] == DEMO_WORLD
    seen = _seeds(trained["synthetic_seeds"]) | _seeds(trained["validation_seeds"])
    assert ensemble.blend is not None and ensemble.calibration is not None
    assert ensemble.calibration.blended
    assert "seeds 312-323" in ensemble.blend.fitted_on
    assert "seeds 324-335" in ensemble.calibration.fitted_on
    assert not seen & (_seeds("312-323") | _seeds("324-335") | {DEMO_SEED})
    size = sum((BUNDLED_ENSEMBLE / f"member_{k:02d}.safetensors").stat().st_size for k in range(4))
    assert size < 25.5e6


def test_bundled_model_is_the_last_member_with_its_own_blend():
    from xdeepbedmap.cli.survey_blend import checkpoint_blend

    last = BUNDLED_ENSEMBLE / "member_03.safetensors"
    assert BUNDLED_MODEL.read_bytes() == last.read_bytes()  # one blob in git
    blend = checkpoint_blend(None)  # demo_model.blend.json, checked against the model
    ensemble_blend = read_ensemble(BUNDLED_ENSEMBLE).blend
    assert blend is not None and blend != ensemble_blend
    # one member alone is noisier than the mean: it is trusted less near the lines
    assert blend.weights[0] < ensemble_blend.weights[0]


@pytest.fixture(scope="module")
def demo_table():
    from xdeepbedmap.catalog import open_inputs, open_truth
    from xdeepbedmap.catalog_survey import open_survey
    from xdeepbedmap.cli.survey_blend import checkpoint_blend
    from xdeepbedmap.evaluation import evaluate

    return evaluate(
        open_inputs("demo"),
        open_truth("demo").compute(),
        model=None,
        ensemble=read_ensemble(BUNDLED_ENSEMBLE),
        survey=open_survey("demo"),
        blend=checkpoint_blend(None),
    )


def test_bundled_ensemble_beats_bicubic_on_the_held_out_demo_region(demo_table):
    """Measured: 78.4 m vs bicubic 99.0 m (-21%)."""
    rmse = {name: row["rmse"] for name, row in demo_table.items() if "rmse" in row}
    assert rmse["DeepBedMap ensemble"] <= 0.85 * rmse["bicubic"]
    truth = demo_table["truth"]["roughness"]
    assert abs(demo_table["DeepBedMap ensemble"]["roughness"] - truth) < abs(
        demo_table["bicubic"]["roughness"] - truth
    )
    uncertainty = demo_table["uncertainty"]
    assert uncertainty["coverage_95"] >= 0.9 and 0.6 <= uncertainty["coverage_68"] <= 0.98


def test_blend_keeps_the_single_model_from_redrawing_the_surveyed_bed(demo_table):
    """Measured: raw 127.9 m, blended 98.3 m, bicubic 99.0 m on the densely surveyed demo.

    One snapshot alone redraws the bed even where the 1 km bed is good; its
    blend takes it back to bicubic there and keeps it where lines are far.
    """
    rmse = {name: row["rmse"] for name, row in demo_table.items() if "rmse" in row}
    assert rmse["DeepBedMap blended"] <= 0.85 * rmse["DeepBedMap"]
    assert rmse["DeepBedMap blended"] <= 1.02 * rmse["bicubic"]


def test_evaluate_judges_only_the_requested_bbox(tmp_path):
    """Inputs opened for a bbox carry a margin; beds, bicubic and truth are cut alike."""
    from xdeepbedmap.catalog import open_inputs, open_truth
    from xdeepbedmap.evaluation import evaluate, format_table

    ds = open_inputs("demo")
    left, top = float(ds.x[0]) - 500, float(ds.y[0]) + 500
    bbox = (left, top - 12_000, left + 12_000, top)
    table = evaluate(open_inputs("demo", region=bbox), open_truth("demo"), halo=3)
    assert table["DeepBedMap"]["count"] == table["bicubic"]["count"] == 48 * 48
    assert "DeepBedMap" in format_table(table)


def test_evaluate_says_when_the_model_is_judged_on_another_world(capsys):
    from xdeepbedmap.cli import main

    argv = ["evaluate", "--synthetic", "336", "--synthetic-shape", "16x16", "--halo", "3"]
    assert main(argv + ["--synthetic-world", "v1"]) == 0
    assert "the model trained on synthetic world v2; judging it on world v1" in (
        capsys.readouterr().out
    )
    assert main(argv + ["--synthetic-world", "v2", "--no-survey"]) == 0
    assert "judging it on world" not in capsys.readouterr().out
