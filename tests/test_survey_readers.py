"""Survey readers: each layout, lon/lat placement, no-data/quality drops, chunking."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pyproj import Transformer

from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.survey import SurveyError, iter_points, read_points, to_ellipsoid, to_geoid
from xdeepbedmap.survey.readers import CRESIS_COLUMNS

# true EPSG:3031 positions of the picks (West Antarctica)
X = np.array([-1_500_000.0, -1_499_970.0, -1_499_940.0, -1_499_910.0, -1_499_880.0, -1_499_850.0])
Y = np.array([-300_000.0, -300_010.0, -300_020.0, -300_030.0, -300_040.0, -300_050.0])
BOTTOM = np.array([-500.0, -9999.0, -510.0, -520.0, np.nan, -530.0])
QUALITY = np.array([1, 1, 3, 2, 1, 1])


def lonlat(x=X, y=Y, crs="EPSG:4326"):
    return Transformer.from_crs("EPSG:3031", crs, always_xy=True).transform(x, y)


@pytest.fixture
def cresis_csv(tmp_path):
    lon, lat = lonlat()
    frame = pd.DataFrame(
        {
            "LAT": lat,
            "LON": lon,
            "UTCTIMESOD": np.arange(6.0),
            "THICK": 1000.0,
            "ELEVATION": 1500.0,
            "FRAME": 2009102401001,
            "SURFACE": 500.0,
            "BOTTOM": BOTTOM,
            "QUALITY": QUALITY,
        }
    )[list(CRESIS_COLUMNS)]
    path = tmp_path / "Data_20091024_01.csv"
    frame.to_csv(path, index=False, float_format="%.8f")
    return path


def test_cresis_places_points_within_1m_and_drops_nodata_and_poor_picks(cresis_csv):
    points = read_points(cresis_csv)
    keep = [0, 3, 5]  # -9999, poor quality (3) and NaN dropped
    assert list(points.columns) == ["x", "y", "bed", "quality", "line"]
    np.testing.assert_allclose(points["x"], X[keep], atol=1.0)
    np.testing.assert_allclose(points["y"], Y[keep], atol=1.0)
    # against pyproj directly, from the file's own lon/lat
    raw = pd.read_csv(cresis_csv)
    ex, ey = Transformer.from_crs("EPSG:4326", "EPSG:3031", always_xy=True).transform(
        raw.LON.to_numpy()[keep], raw.LAT.to_numpy()[keep]
    )
    np.testing.assert_allclose(points["x"], ex, atol=1e-6)
    np.testing.assert_allclose(points["y"], ey, atol=1e-6)
    np.testing.assert_array_equal(points["bed"], BOTTOM[keep])
    assert points["line"].tolist() == ["2009102401001"] * 3
    assert points.attrs["vertical_datum"] == "WGS84 ellipsoid"
    assert points.attrs["layout"] == "cresis"
    assert (points.attrs["rows_read"], points.attrs["dropped_nodata"]) == (6, 2)
    assert points.attrs["dropped_quality"] == 1


def test_quality_threshold_is_a_parameter(cresis_csv):
    assert len(read_points(cresis_csv, max_quality=None)) == 4
    assert len(read_points(cresis_csv, max_quality=1)) == 2


def test_chunked_reading_equals_one_read(cresis_csv):
    whole = read_points(cresis_csv)
    chunks = list(iter_points(cresis_csv, chunksize=2))
    assert len(chunks) == 3
    assert sum(c.attrs["dropped_nodata"] for c in chunks) == 2
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    small = read_points(cresis_csv, chunksize=1)
    pd.testing.assert_frame_equal(small, whole)
    assert small.attrs == whole.attrs


def test_several_files_and_gzip(cresis_csv, tmp_path):
    gz = tmp_path / "copy.csv.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(cresis_csv.read_bytes())
    both = read_points([cresis_csv, gz])
    assert len(both) == 6 and both.attrs["rows_read"] == 12


def test_bedmap_layout_with_comments_and_bed_column(tmp_path):
    lon, lat = lonlat()
    path = tmp_path / "bedmap.csv"
    body = pd.DataFrame(
        {
            "trajectory_id": ["L1"] * 3 + ["L2"] * 3,
            "longitude (degree_east)": lon,
            "latitude (degree_north)": lat,
            "surface_altitude (m)": 400.0,
            "bedrock_altitude (m)": BOTTOM,
        }
    ).to_csv(index=False, float_format="%.8f")
    path.write_text("#project: test\n#time_coverage_start: 2001\n" + body)
    points = read_points(path, vertical_datum="gl04c geoid")
    keep = [0, 2, 3, 5]  # no quality column: only -9999 and NaN dropped
    np.testing.assert_allclose(points["x"], X[keep], atol=1.0)
    np.testing.assert_allclose(points["y"], Y[keep], atol=1.0)
    assert points["line"].tolist() == ["L1", "L1", "L2", "L2"]
    assert points.attrs["vertical_datum"] == "gl04c geoid"
    assert points.attrs["layout"] == "bedmap"
    surface = read_points(path, bed_column="surface_altitude (m)")
    assert len(surface) == 6 and (surface["bed"] == 400.0).all()
    with pytest.raises(SurveyError, match="bedrock_altitude"):
        read_points(path, bed_column="thickness")


def test_xyz_needs_a_crs_and_reprojects(tmp_path):
    path = tmp_path / "picks.xyz"
    np.savetxt(path, np.column_stack([X, Y, BOTTOM]), fmt="%.3f")
    with pytest.raises(SurveyError, match="CRS"):
        read_points(path)
    points = read_points(path, crs="EPSG:3031")
    np.testing.assert_allclose(points["x"], X[[0, 2, 3, 5]])
    assert points.attrs["vertical_datum"] == "unspecified"
    # another projected CRS with named columns
    ex, ey = lonlat(crs="EPSG:3976")
    named = tmp_path / "picks.csv"
    pd.DataFrame({"E": ex, "N": ey, "z": BOTTOM}).to_csv(named, index=False, float_format="%.4f")
    points = read_points(named, "xyz", crs="EPSG:3976", x_column="E", y_column="N")
    np.testing.assert_allclose(points["x"], X[[0, 2, 3, 5]], atol=1.0)
    np.testing.assert_allclose(points["y"], Y[[0, 2, 3, 5]], atol=1.0)


def test_parquet_batches(tmp_path):
    pytest.importorskip("pyarrow")
    lon, lat = lonlat()
    path = tmp_path / "picks.parquet"
    frame = pd.DataFrame({"LAT": lat, "LON": lon, "BOTTOM": BOTTOM, "QUALITY": QUALITY})
    frame.to_parquet(path)
    whole = read_points(path)
    np.testing.assert_allclose(whole["x"], X[[0, 3, 5]], atol=1.0)
    pd.testing.assert_frame_equal(
        pd.concat(list(iter_points(path, chunksize=2)), ignore_index=True), whole
    )


def test_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(SurveyError, match="does not exist"):
        read_points(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(XDeepBedMapError, match=r"columns are \['a', 'b'\]"):
        read_points(bad, crs="EPSG:3031")
    pytest.importorskip("pyarrow")
    torn = tmp_path / "torn.parquet"  # e.g. a copy cut short
    torn.write_bytes(b"PAR1 not a parquet file")
    with pytest.raises(SurveyError, match=r"torn.parquet: not a readable Parquet file"):
        read_points(torn, crs="EPSG:3031")


def test_geoid_corrections_shift_by_the_geoid_height():
    points = pd.DataFrame({"x": [0.0, 500.0], "y": [0.0, -250.0], "bed": [100.0, 200.0]})
    points.attrs["vertical_datum"] = "WGS84 ellipsoid"
    # N = 10 + x / 100 (m): bilinear sampling is exact on a plane
    xs, ys = np.arange(-2000.0, 2001.0, 1000.0), np.arange(2000.0, -2001.0, -1000.0)
    geoid = xr.DataArray(
        10 + xs[None, :] / 100 + 0 * ys[:, None], coords={"y": ys, "x": xs}, dims=("y", "x")
    )
    on_geoid = to_geoid(points, geoid)
    np.testing.assert_allclose(on_geoid["bed"], [90.0, 185.0])
    assert on_geoid.attrs["vertical_datum"] == "gl04c geoid"
    back = to_ellipsoid(on_geoid, geoid)
    np.testing.assert_allclose(back["bed"], points["bed"])
    with pytest.raises(SurveyError, match="twice"):
        to_ellipsoid(back, geoid)
    far = points.assign(x=[0.0, 9e5])
    with pytest.raises(SurveyError, match="1 of 2 points"):
        to_geoid(far, geoid)
