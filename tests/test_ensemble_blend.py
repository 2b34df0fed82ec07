"""Ensembles blended by distance to the survey picks: exact, chunk-free, calibrated alike."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from xdeepbedmap.baselines import bicubic
from xdeepbedmap.cli import main
from xdeepbedmap.distance_blend import DistanceBlend, distance_to_points
from xdeepbedmap.ensemble import read_ensemble, superresolve_ensemble
from xdeepbedmap.ensemble.store import (
    BUNDLED_ENSEMBLE,
    MANIFEST,
    Ensemble,
    EnsembleError,
    set_calibration,
    set_distance_blend,
    write_ensemble,
)
from xdeepbedmap.synthetic import WORLDS, make_region, survey_picks

BLEND = DistanceBlend((0.5, 5.0), (0.2, 0.9), "test")


@pytest.fixture(scope="module")
def region():
    inputs, truth = make_region((24, 24), seed=300, **WORLDS["v2"])
    return inputs, survey_picks(truth, 300)


def _unblended() -> Ensemble:
    """The bundled members without a blend, their calibration taken as fitted unblended."""
    bundled = read_ensemble(BUNDLED_ENSEMBLE)
    return replace(bundled, blend=None, calibration=replace(bundled.calibration, blended=False))


def _record_world(folder, world: str, calibration, blend=None) -> None:
    """Rewrite ``folder``'s manifest: trained on ``world``, with ``calibration`` and ``blend``."""
    record = json.loads((folder / MANIFEST).read_text())
    record["metadata"]["data"]["training_data"]["synthetic_world"] = world
    members = [{k: v for k, v in m.items() if k != "sha256"} for m in record["members"]]
    write_ensemble(
        folder, members, metadata=record["metadata"], calibration=calibration, blend=blend
    )


def _unblended_folder(tmp_path, world: str = "v1"):
    """A copy of the bundled ensemble as :func:`_unblended`, recorded as trained on ``world``."""
    folder = tmp_path / "ens"
    shutil.copytree(BUNDLED_ENSEMBLE, folder)
    _record_world(folder, world, _unblended().calibration)
    return folder


@pytest.fixture(scope="module")
def blended_ensemble():
    """The bundled members with a blend and their calibration marked as fitted blended."""
    bundled = read_ensemble(BUNDLED_ENSEMBLE)
    return replace(bundled, blend=BLEND, calibration=replace(bundled.calibration, blended=True))


def test_members_mean_and_spread_are_blended_exactly(region, blended_ensemble):
    inputs, picks = region
    raw = superresolve_ensemble(inputs, blended_ensemble, calibration=1.0, members=True)
    out = superresolve_ensemble(
        inputs, blended_ensemble, calibration=1.0, members=True, survey=picks
    )
    w = BLEND.weight(distance_to_points(picks, raw["bed"]).values)
    base = bicubic(inputs).values
    assert np.allclose(out["bed"], base + w * (raw["bed"].values - base), atol=1e-3, equal_nan=True)
    assert np.allclose(out["bed_std"], w * raw["bed_std"].values, atol=1e-3, equal_nan=True)
    members = base + w * (raw["bed_members"].values - base)
    assert np.allclose(out["bed_members"], members, atol=1e-3, equal_nan=True)
    # near the lines the blend pulls the mean towards bicubic: it did change something
    assert np.nanmax(abs(out["bed"].values - raw["bed"].values)) > 1.0
    assert "0.5 km: 0.20" in out["bed"].attrs["distance_blend"]


def test_blended_output_does_not_depend_on_chunks(region, blended_ensemble):
    inputs, picks = region
    whole = superresolve_ensemble(inputs, blended_ensemble, survey=picks)
    chunked = superresolve_ensemble(inputs.chunk(), blended_ensemble, survey=picks, chunks=9)
    assert chunked["bed"].chunks is not None
    chunked = chunked.compute()
    assert float(abs(whole["bed"] - chunked["bed"]).max()) < 0.2
    assert float(abs(whole["bed_std"] - chunked["bed_std"]).max()) < 0.2


def test_survey_without_blend_and_blended_calibration_without_survey_are_refused(region):
    inputs, picks = region
    bundled = _unblended()
    with pytest.raises(ValueError, match="has no distance blend"):
        superresolve_ensemble(inputs, bundled, survey=picks)
    blended_cal = replace(bundled.calibration, blended=True)
    with pytest.raises(ValueError, match="fitted on the bed blended"):
        superresolve_ensemble(inputs, replace(bundled, blend=BLEND, calibration=blended_cal))


def test_setting_a_blend_keeps_members_and_drops_only_a_blended_calibration(tmp_path):
    folder = _unblended_folder(tmp_path)
    before = read_ensemble(folder)
    set_distance_blend(folder, BLEND)
    after = read_ensemble(folder)
    assert after.blend == BLEND and after.calibration == before.calibration
    assert after.members == before.members
    set_calibration(folder, replace(before.calibration, blended=True))
    assert read_ensemble(folder).blend == BLEND  # kept by set_calibration
    set_distance_blend(folder, replace(BLEND, weights=(0.3, 0.8)))
    assert read_ensemble(folder).calibration is None
    record = json.loads((folder / MANIFEST).read_text())
    assert record["distance_blend"]["weights"] == [0.3, 0.8]


def test_old_manifests_read_without_a_blend(tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(BUNDLED_ENSEMBLE, folder)
    record = json.loads((folder / MANIFEST).read_text())
    del record["distance_blend"], record["calibration"]["blended"]  # as written before blends
    (folder / MANIFEST).write_text(json.dumps(record))
    ensemble = read_ensemble(folder)
    assert isinstance(ensemble, Ensemble) and ensemble.blend is None
    assert ensemble.calibration is not None and not ensemble.calibration.blended


def _as_trained_on_v2(folder):
    """Record the members of an :func:`_unblended_folder` as trained on world v2."""
    before = read_ensemble(folder)
    _record_world(folder, "v2", before.calibration, before.blend)


def test_fit_blend_writes_into_the_manifest_and_refuses_to_refit_silently(tmp_path, capsys):
    folder = _unblended_folder(tmp_path)
    argv = ["fit-blend", "--model", str(folder), "--synthetic", "336"]
    argv += ["--synthetic-shape", "24x24"]
    assert main(argv) == 1  # members trained on world v1: a v2 blend would not be theirs
    assert "the model trained on world v1" in capsys.readouterr().err
    _as_trained_on_v2(folder)
    assert main(argv) == 0
    assert read_ensemble(folder).blend is not None
    assert main(argv) == 1
    assert "already has a distance blend" in capsys.readouterr().err


def test_blend_of_an_ensemble_calibrated_blended_can_be_refitted(tmp_path, capsys):
    folder = _unblended_folder(tmp_path)
    _as_trained_on_v2(folder)
    set_distance_blend(folder, BLEND)
    set_calibration(folder, replace(read_ensemble(folder).calibration, blended=True))
    argv = ["fit-blend", "--model", str(folder), "--synthetic", "336"]
    assert main([*argv, "--synthetic-shape", "24x24", "--overwrite"]) == 0
    assert "recalibrate" in capsys.readouterr().out
    after = read_ensemble(folder)
    assert after.blend is not None and after.blend != BLEND and after.calibration is None


def test_a_blend_fitted_for_other_members_is_refused(region):
    inputs, picks = region
    bundled = read_ensemble(BUNDLED_ENSEMBLE)
    assert bundled.blend.model_sha256 == bundled.digest  # fit-blend recorded these members
    other = replace(bundled, blend=replace(bundled.blend, model_sha256="0" * 64))
    with pytest.raises(ValueError, match="fitted for other members"):
        superresolve_ensemble(inputs, other, survey=picks)


def test_evaluate_blends_the_model_but_not_an_ensemble_without_a_blend(region):
    from xdeepbedmap.evaluation import evaluate
    from xdeepbedmap.synthetic import make_region

    inputs, picks = region
    _, truth = make_region((24, 24), seed=300, **WORLDS["v2"])
    from xdeepbedmap.grids import validate_inputs
    from xdeepbedmap.metrics import error_summary
    from xdeepbedmap.truth import align_truth

    table = evaluate(inputs, truth, None, ensemble=_unblended(), survey=picks, blend=BLEND)
    assert table["DeepBedMap blended"]["rmse"] != table["DeepBedMap"]["rmse"]
    raw = superresolve_ensemble(inputs, _unblended())["bed"]
    expected = error_summary(raw.compute(), align_truth(truth, validate_inputs(inputs)))["rmse"]
    assert table["DeepBedMap ensemble"]["rmse"] == pytest.approx(expected, abs=1e-6)


def test_a_blended_calibration_needs_a_blend(tmp_path):
    folder = _unblended_folder(tmp_path)
    with pytest.raises(EnsembleError, match="no distance blend"):
        set_calibration(folder, replace(read_ensemble(folder).calibration, blended=True))
    assert not read_ensemble(folder).calibration.blended


def test_a_resumed_write_sees_other_picks_or_another_blend(region, blended_ensemble):
    from xdeepbedmap.io.identity import differences, write_identity

    inputs, picks = region
    ds = inputs.chunk()
    first = superresolve_ensemble(ds, blended_ensemble, survey=picks, calibration=1.0)["bed"]
    other_picks = superresolve_ensemble(
        ds, blended_ensemble, survey=picks.iloc[::7], calibration=1.0
    )["bed"]
    nudged = replace(blended_ensemble, blend=replace(BLEND, weights=(0.2, 0.904)))
    other_blend = superresolve_ensemble(ds, nudged, survey=picks, calibration=1.0)["bed"]
    recorded = write_identity(first, ds)
    assert "survey_sha256" in differences(recorded, write_identity(other_picks, ds))[0]
    assert "distance_blend_knots" in differences(recorded, write_identity(other_blend, ds))[0]


def test_an_unblended_calibration_is_not_applied_to_blended_output(region):
    inputs, picks = region
    ensemble = replace(_unblended(), blend=BLEND)
    assert ensemble.calibration is not None and not ensemble.calibration.blended
    with pytest.raises(ValueError, match="fitted on the unblended mean"):
        superresolve_ensemble(inputs, ensemble, survey=picks)
    raw = superresolve_ensemble(inputs, ensemble, survey=picks, calibration=1.0)
    assert raw["bed_std"].attrs["calibration"] == "given by the caller"


def test_evaluate_blends_a_synthetic_survey_region_with_its_own_picks(tmp_path, capsys):
    folder = _unblended_folder(tmp_path)
    ensemble = read_ensemble(folder)
    set_distance_blend(folder, BLEND)
    set_calibration(folder, replace(ensemble.calibration, blended=True))
    argv = ["evaluate", "--synthetic", "300", "--synthetic-shape", "24x24"]
    argv += [
        "--synthetic-world",
        "v2",
        "--ensemble",
        str(folder),
        "--json",
        str(tmp_path / "e.json"),
    ]
    assert main(argv) == 0
    table = json.loads((tmp_path / "e.json").read_text())
    assert 0.0 < table["uncertainty"]["coverage_95"] <= 1.0
    # a world without survey lines: no picks for its blended error model, refused naming v2
    argv[argv.index("v2")] = "v1"
    assert main(argv) == 1
    assert "pass --synthetic-world v2" in capsys.readouterr().err


def test_calibrate_refuses_regions_files_for_a_blended_ensemble(tmp_path, capsys):
    folder = _unblended_folder(tmp_path)
    set_distance_blend(folder, BLEND)
    argv = ["calibrate", "--ensemble", str(folder), "--regions", str(tmp_path / "r.yaml")]
    argv += ["--synthetic", "300"]
    assert main(argv) == 1
    assert "calibrate it on --synthetic" in capsys.readouterr().err
