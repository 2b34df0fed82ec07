"""Synthetic surveys: layout parameters, and the round trip through the CReSIS reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xdeepbedmap.survey import SurveyError, read_points, synthetic_survey, write_cresis_csv
from xdeepbedmap.survey.readers import CRESIS_COLUMNS, NODATA
from xdeepbedmap.synthetic import make_truth


@pytest.fixture(scope="module")
def truth():
    return make_truth((64, 64), seed=3)  # 16 km x 16 km with an ocean corner


def test_round_trip_through_the_cresis_reader(truth, tmp_path):
    survey = synthetic_survey(truth, line_spacing=2000.0, sample_spacing=40.0, seed=1)
    path = write_cresis_csv(survey, tmp_path / "synthetic_csv_good.csv")
    assert pd.read_csv(path, nrows=1).columns.tolist() == list(CRESIS_COLUMNS)
    points = read_points(path)
    kept = survey[(survey.BOTTOM != NODATA) & (survey.QUALITY <= 2)]
    assert len(points) == len(kept)
    np.testing.assert_allclose(points["x"], kept["x"], atol=1.0)
    np.testing.assert_allclose(points["y"], kept["y"], atol=1.0)
    np.testing.assert_allclose(points["bed"], kept["BOTTOM"], atol=1e-3)
    assert points.attrs["dropped_nodata"] == int((survey.BOTTOM == NODATA).sum()) > 0
    assert (
        points.attrs["dropped_quality"]
        == int(((survey.BOTTOM != NODATA) & (survey.QUALITY == 3)).sum())
        > 0
    )
    # picks are the truth plus noise: quality-1 picks within 5 sigma of the truth bed
    good = points[points.quality == 1]
    truth_at = truth.interp(x=("p", good.x.to_numpy()), y=("p", good.y.to_numpy())).values
    assert np.nanmax(np.abs(good.bed.to_numpy() - truth_at)) < 5 * 5.0 + 1.0


def test_line_spacing_and_along_track_spacing(truth):
    survey = synthetic_survey(truth, line_spacing=3000.0, tie_spacing=None, sample_spacing=30.0)
    ys = np.unique(np.round(survey.y, 3))
    np.testing.assert_allclose(np.diff(ys), 3000.0)
    line = survey[survey.FRAME == survey.FRAME.iloc[0]]
    np.testing.assert_allclose(np.diff(line.x), 30.0)
    assert np.all(np.diff(line.UTCTIMESOD) > 0)


def test_dense_patches_and_gaps_change_density(truth):
    base = synthetic_survey(truth, line_spacing=4000.0, seed=2)
    dense = synthetic_survey(truth, line_spacing=4000.0, dense_patches=2, patch_size=4000.0, seed=2)
    gappy = synthetic_survey(truth, line_spacing=4000.0, gaps=1, gap_size=8000.0, seed=2)
    assert len(dense) > 1.2 * len(base)
    assert len(gappy) < 0.9 * len(base)
    with pytest.raises(SurveyError, match="line_spacing"):
        synthetic_survey(truth, line_spacing=0.0)
