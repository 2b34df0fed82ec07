"""Intake catalogs: lazy loading, the demo region, and the real-product catalog's paths."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

from xdeepbedmap.catalog import (
    DEMO_SEED,
    DEMO_SHAPE,
    DEMO_WORLD,
    catalog_path,
    open_inputs,
    open_truth,
)
from xdeepbedmap.grids import (
    VARIABLES,
    GeoBox,
    grid_coords,
    make_grid,
    pixel_centres,
    validate_inputs,
    zoom_in,
)
from xdeepbedmap.synthetic import WORLDS, make_region, survey_picks


class CountTasks(Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def _pretask(self, key, dask, state):
        self.count += 1


@pytest.fixture(scope="module")
def demo_region():
    return make_region(DEMO_SHAPE, seed=DEMO_SEED, **WORLDS[DEMO_WORLD])


def test_open_inputs_is_lazy():
    with CountTasks() as counter:
        ds = open_inputs("demo", chunks=32)
    assert counter.count == 0
    for name in VARIABLES:
        assert hasattr(ds[name].data, "dask"), name
    # chunks nest: chunk (i, j) of each variable covers the same ground
    assert ds["bed"].chunks == ((32, 32, 16), (32, 32, 16))
    assert ds["surface"].chunks == ((320, 320, 160), (320, 320, 160))
    assert ds["vx"].chunks == ((64, 64, 32), (64, 64, 32))
    validate_inputs(ds)


def test_catalog_gives_the_numbers_of_make_region(demo_region):
    inputs, truth = demo_region
    ds = open_inputs("demo").compute()
    for name in VARIABLES:
        np.testing.assert_array_equal(ds[name].values, inputs[name].values, err_msg=name)
        np.testing.assert_array_equal(
            ds[name].coords[ds[name].dims[0]], inputs[name].coords[inputs[name].dims[0]]
        )
    np.testing.assert_array_equal(open_truth("demo").values, truth.values)
    assert ds.rio.crs.to_epsg() == 3031


def test_demo_catalog_ships_the_picks_its_bed_was_gridded_from(demo_region):
    from xdeepbedmap.catalog_survey import open_survey, survey_path

    assert WORLDS[DEMO_WORLD]["bed_model"] == "survey"
    _, truth = demo_region
    expected = survey_picks(truth, DEMO_SEED)
    picks = open_survey("demo")
    assert picks.attrs["crs"] == "EPSG:3031" and len(picks) == len(expected) > 1000
    for column in ("x", "y", "bed"):
        np.testing.assert_allclose(picks[column], expected[column], rtol=0, atol=1e-6)
    assert survey_path("antarctica") is None
    with pytest.raises(ValueError, match="names no survey picks"):
        open_survey("antarctica")


def test_a_catalog_naming_a_missing_survey_file_says_which(tmp_path):
    from xdeepbedmap.catalog_survey import survey_path

    text = catalog_path("demo").read_text().replace("demo/survey.parquet", "gone.parquet")
    (tmp_path / "cat.yaml").write_text(text)
    with pytest.raises(FileNotFoundError, match=r"metadata.survey names .*gone.parquet"):
        survey_path(tmp_path / "cat.yaml")
    text = text.replace(
        'survey: {path: gone.parquet, layout: xyz, crs: "EPSG:3031"}', "survey: x.pq"
    )
    (tmp_path / "cat.yaml").write_text(text)
    with pytest.raises(ValueError, match="metadata.survey must be a mapping with a path"):
        survey_path(tmp_path / "cat.yaml")


def test_region_subset_is_a_slice(demo_region):
    inputs, _ = demo_region
    x, y = inputs.x.values, inputs.y.values
    bbox = (x[10] - 1, y[29] - 1, x[39] + 1, y[5] + 1)
    ds = open_inputs("demo", region=bbox, margin=0).compute()
    expected = inputs.isel(
        x=slice(10, 40),
        y=slice(5, 30),
        x_surface=slice(100, 400),
        y_surface=slice(50, 300),
        x_velocity=slice(20, 80),
        y_velocity=slice(10, 60),
    )
    for name in VARIABLES:
        np.testing.assert_array_equal(ds[name].values, expected[name].values, err_msg=name)


def test_unknown_catalog_and_missing_catalog_file(tmp_path):
    with pytest.raises(ValueError, match="unknown catalog 'nope'.*antarctica.*demo"):
        open_inputs("nope")
    with pytest.raises(FileNotFoundError, match="catalog file not found"):
        catalog_path(tmp_path / "absent.yaml")


def test_antarctica_catalog_says_where_to_get_missing_files(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"bedmap2_bed\.tif not found\. Download it from https://"
    ):
        open_inputs("antarctica", data_dir=tmp_path)


def _write_products(directory, base: GeoBox):
    """Small files in the formats and nodata conventions of the real products."""
    rng = np.random.default_rng(0)

    def raster(grid, values, nodata=None, dtype="float32"):
        da = xr.DataArray(values.astype(dtype), dims=("y", "x"), coords=grid_coords(grid))
        da = da.rio.write_crs("EPSG:3031")
        return da.rio.write_nodata(nodata, encoded=False) if nodata is not None else da

    (directory / "bedmap2_tiff").mkdir()
    bed = rng.normal(0, 300, base.shape).round()
    bed[0, 0] = 32767  # BEDMAP2's int16 nodata
    raster(base, bed, 32767, "int16").rio.to_raster(directory / "bedmap2_tiff" / "bedmap2_bed.tif")
    surface = rng.normal(1000, 10, zoom_in(base, 10).shape)
    surface[:5, :5] = -9999
    raster(zoom_in(base, 10), surface, -9999).rio.to_raster(directory / "REMA_100m_dem.tif")
    acc = rng.uniform(50, 500, base.shape)
    raster(base, acc, -9999).rio.to_raster(directory / "Arthern_accumulation_bedmap2_grid1.tif")
    # velocity on a 450 m grid that covers the base grid with margin, as netCDF
    left, top = base.boundingbox.left, base.boundingbox.top
    vel = make_grid(left - 4500, top + 4500, 450.0, (int(base.shape[0] * 1000 / 450) + 22,) * 2)
    vel_y, vel_x = pixel_centres(vel)
    xx, yy = np.meshgrid(vel_x, vel_y)
    ds = xr.Dataset(
        {
            "VX": (("y", "x"), (0.001 * (xx - left)).astype("float32")),
            "VY": (("y", "x"), (0.002 * (yy - top)).astype("float32")),
        },
        coords=grid_coords(vel),
    ).rio.write_crs("EPSG:3031")
    ds.to_netcdf(directory / "antarctic_ice_vel_phase_map_v01.nc")


def test_antarctica_catalog_reads_real_formats(tmp_path):
    base = make_grid(-1_500_000.0, -300_000.0, 1000.0, (12, 12))
    _write_products(tmp_path, base)
    left, top = base.boundingbox.left, base.boundingbox.top
    inner = (left + 1000, top - 11000, left + 11000, top - 1000)
    with CountTasks() as counter:
        ds = open_inputs("antarctica", data_dir=tmp_path, region=inner, chunks=5, margin=0)
    assert counter.count == 0
    got = validate_inputs(ds)
    assert got.shape == (10, 10)
    assert "450 m" in ds["vx"].attrs["xdeepbedmap_resampled"]
    ds = ds.compute()
    # nodata values became NaN, valid values pass unchanged
    assert np.isnan(ds["surface"].values).sum() == 0  # the -9999 block is outside the region
    vel_y, vel_x = pixel_centres(zoom_in(got, 2))
    tx, ty = np.meshgrid(vel_x, vel_y)
    # GDAL's bilinear widens its kernel when going coarser (450 -> 500 m), which
    # shifts the effective sample point by up to ~5% of a source pixel on a ramp
    np.testing.assert_allclose(ds["vx"].values, 0.001 * (tx - left), atol=0.05 * 450 * 0.001)
    np.testing.assert_allclose(ds["vy"].values, 0.002 * (ty - top), atol=0.05 * 450 * 0.002)
    full = open_inputs("antarctica", data_dir=tmp_path).compute()
    assert np.isnan(full["bed"].values[0, 0]) and np.isnan(full["surface"].values[0, 0])
    assert np.isfinite(full["bed"].values[1:, 1:]).all()
