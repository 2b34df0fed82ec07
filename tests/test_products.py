"""The ``antarctica`` catalog on format-faithful stand-ins of the real products.

The stand-ins (tests/products.py) carry the real file names, dtypes, nodata
conventions, global grid origins and CRS encodings, with planar values, so
every check of placement is a check against the plane.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import rioxarray
import xarray as xr

import xdeepbedmap
from tests import products as P
from xdeepbedmap.cli import main
from xdeepbedmap.crs import CRSMismatchError, same_crs
from xdeepbedmap.grids import VARIABLES, make_grid, validate_inputs
from xdeepbedmap.inference import DEFAULT_HALO, superresolve
from xdeepbedmap.model_store import DemoModelOnRealDataWarning, check_model_for_data
from xdeepbedmap.region import DEFAULT_MARGIN, REGION_ATTR, crop_to_region, grow_within

EXTENT = P.EXTENT
BBOX = (P.X0 - 6_000, P.Y0 - 6_000, P.X0 + 6_000, P.Y0 + 6_000)


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """Every product, MEaSUREs with CF parameters only, BedMachine with an ocean and a shelf."""
    d = tmp_path_factory.mktemp("antarctica")
    P.write_all(d, EXTENT)
    P.write_bedmachine(d, EXTENT, ocean_x=P.X0 - 5_000 + 1, floating=(P.X0 + 4_750, P.X0 + 5_750))
    return d


def _open(d, **kwargs):
    kwargs.setdefault("region", BBOX)
    return xdeepbedmap.open_inputs("antarctica", data_dir=d, **kwargs).compute()


def _plane_error(da: xr.DataArray, plane: P.Plane) -> float:
    ydim, xdim = da.dims
    xx, yy = np.meshgrid(da[xdim].values, da[ydim].values)
    return float(np.nanmax(np.abs(da.values - plane(xx, yy))))


def _half_pixel(plane: P.Plane, resolution: float) -> float:
    """The value change of a 0.5 px shift along the axis where the plane is flattest."""
    return 0.5 * resolution / 1000.0 * min(abs(plane.sx), abs(plane.sy))


def test_every_variable_lands_where_it_belongs(standins):
    ds = _open(standins, margin=0)
    base = validate_inputs(ds)
    assert base.shape == (13, 13)  # base pixel centres inside BBOX, on BEDMAP2's grid
    assert ds["vx"].attrs["xdeepbedmap_resampled"] == "average from 450 m"
    assert "xdeepbedmap_resampled" not in ds["surface"].attrs  # REMA nests: cut, not resampled
    for name, (_, _, factor) in VARIABLES.items():
        tolerance = _half_pixel(P.PLANES[name], 1000.0 / factor)
        assert _plane_error(ds[name], P.PLANES[name]) < tolerance, name
    assert ds["bed"].dtype == np.float32  # BEDMAP2 int16, converted after masking


@pytest.mark.parametrize("crs_mode", ["cf", "wkt", "absent"])
def test_every_netcdf_crs_encoding_is_epsg3031(tmp_path, crs_mode, caplog):
    P.write_all(tmp_path, EXTENT, crs_mode=crs_mode)
    with caplog.at_level(logging.WARNING, logger="xdeepbedmap"):
        ds = _open(tmp_path, ice_mask=None)
    said = [r.getMessage() for r in caplog.records if "records no CRS" in r.getMessage()]
    if crs_mode == "absent":  # vx and vy share the file: said once, naming the catalog's CRS
        assert len(said) == 1 and "measures_velocity" in said[0] and "EPSG:3031" in said[0]
    else:
        assert said == []
    assert ds.rio.crs.to_epsg() == 3031
    assert _plane_error(ds["vy"], P.PLANES["vy"]) < _half_pixel(P.PLANES["vy"], 500.0)


def test_nodata_from_tags_and_from_the_catalog(standins):
    full = xdeepbedmap.open_inputs("antarctica", data_dir=standins, ice_mask=None).compute()
    # BEDMAP2's int16 32767 (tagged) and Arthern's untagged -9999 (catalog nodata)
    assert np.isnan(full["bed"].values[0, 0]) and np.isnan(full["accumulation"].values[-1, -1])
    assert np.isfinite(full["bed"].values).sum() == full["bed"].size - 1
    assert np.isfinite(full["accumulation"].values).sum() == full["accumulation"].size - 1
    for name in VARIABLES:
        assert not np.isin(full[name].values, [32767.0, -9999.0]).any(), name


def test_a_really_different_crs_is_refused_naming_both(tmp_path):
    from pyproj import CRS

    assert same_crs(P.CF_POLAR_STEREO, "EPSG:3031") and same_crs(P.BEDMAP2_WKT, "EPSG:3031")
    P.write_all(tmp_path, EXTENT)
    path = tmp_path / "antarctic_ice_vel_phase_map_v01.nc"
    ds = xr.open_dataset(path, decode_coords="all").load()
    ds["coord_system"].attrs = CRS.from_epsg(3413).to_cf()
    ds.close()
    ds.to_netcdf(path, engine="netcdf4")
    with pytest.raises(CRSMismatchError, match=r"vx: CRS EPSG:3413 differs from EPSG:3031") as err:
        _open(tmp_path)
    assert "gdalwarp -t_srs EPSG:3031" in str(err.value) and "NETCDF:" in str(err.value)


@pytest.mark.parametrize("bed_source", ["bedmap2", "bedmachine", "bedmap3"])
def test_bed_source_switch(standins, bed_source):
    ds = _open(standins, margin=0, bed_source=bed_source, ice_mask=None)
    entry = {"bedmap2": "bedmap2_bed", "bedmachine": "bedmachine", "bedmap3": "bedmap3"}
    assert ds.attrs["bed_source"] == entry[bed_source]
    if bed_source != "bedmap2":  # 500 m area-averaged onto 1 km
        assert ds["bed"].attrs["xdeepbedmap_resampled"] == "average from 500 m"
    # the BedMachine stand-in has -800 m ocean west of X0 - 5 km
    valid = ds["bed"].where(ds.x > P.X0 - 4_000) if bed_source == "bedmachine" else ds["bed"]
    assert _plane_error(valid, P.PLANES["bed"]) < _half_pixel(P.PLANES["bed"], 1000.0)
    with pytest.raises(ValueError, match=r"unknown bed_source 'gebco'.*bedmachine"):
        _open(standins, bed_source="gebco")


def test_bedmachine_with_only_a_global_proj4_attribute(tmp_path, caplog):
    P.write_all(tmp_path, EXTENT)
    P.write_bedmachine(tmp_path, EXTENT, crs_mode="global")
    with caplog.at_level(logging.WARNING, logger="xdeepbedmap"):
        ds = _open(tmp_path, margin=0, bed_source="bedmachine")
    assert not [r for r in caplog.records if "records no CRS" in r.getMessage()]
    assert _plane_error(ds["bed"], P.PLANES["bed"]) < _half_pixel(P.PLANES["bed"], 1000.0)


def test_ice_mask_fractions(standins):
    ds = _open(standins, margin=0)  # default "auto": grounded, the mask file is there
    grounded = ds["ice_mask"]
    assert grounded.dims == ("y", "x") and grounded.dtype == np.float32
    column = grounded.mean("y").to_series()
    # ocean for 500 m centres < X0 - 5 km; the 1 km cell at X0 - 5 km holds a quarter
    # of ice (one half 500 m pixel), the floating strip covers X0 + 5 km's cell by 3/4
    assert column[P.X0 - 6_000] == 0.0 and column[P.X0 - 5_000] == pytest.approx(0.25)
    assert column[P.X0 - 4_000] == 1.0 and column[P.X0 + 5_000] == pytest.approx(0.25)
    ice = _open(standins, margin=0, ice_mask="ice")["ice_mask"].mean("y").to_series()
    assert ice[P.X0 + 5_000] == 1.0 and ice[P.X0 - 5_000] == pytest.approx(0.25)
    assert "ice_mask" not in _open(standins, margin=0, ice_mask=None)
    lazy = xdeepbedmap.open_inputs("antarctica", data_dir=standins, region=BBOX, chunks=5)
    assert lazy["ice_mask"].chunks == lazy["bed"].chunks


def test_margin_reads_true_data_and_crop_restores_the_region(standins):
    ds = xdeepbedmap.open_inputs("antarctica", data_dir=standins, region=BBOX, chunks=8)
    assert ds.sizes["y"] == 13 + 2 * DEFAULT_MARGIN  # the whole margin of true data fits
    assert _plane_error(ds["bed"].compute(), P.PLANES["bed"]) < 1.0  # true data, not mirrored
    cropped = crop_to_region(ds, ds)
    assert {k: cropped.sizes[k] for k in ("y", "x", "y_surface", "x_velocity")} == {
        "y": 13,
        "x": 13,
        "y_surface": 130,
        "x_velocity": 26,
    }
    assert crop_to_region(cropped, ds).sizes == cropped.sizes  # idempotent
    assert REGION_ATTR not in cropped.attrs
    # near the data's edge the margin is clipped: the bed ends there
    data = make_grid(0.0, 10_000.0, 1000.0, (10, 10))
    grown, added = grow_within(data[2:5, 7:9], data, 3)
    assert added == (2, 3, 3, 1) and grown.shape == (8, 6)
    assert DEFAULT_MARGIN >= DEFAULT_HALO + 1  # the default halo's context is all true data


def test_demo_model_on_real_data_warns_and_says_so(standins):
    ds = xdeepbedmap.open_inputs("antarctica", data_dir=standins, region=BBOX)
    assert ds.attrs["catalog_kind"] == "real"
    with pytest.warns(DemoModelOnRealDataWarning, match="trained on synthetic regions only"):
        assert "model_warning" in check_model_for_data(None, ds)
    demo = xdeepbedmap.open_inputs("demo")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DemoModelOnRealDataWarning)
        assert check_model_for_data("my.safetensors", ds) == {}
        assert check_model_for_data(None, demo) == {}


def test_cli_superresolve_on_the_standins(standins, tmp_path, capsys):
    out = tmp_path / "bed.tif"
    bbox = ",".join(str(v) for v in BBOX)
    argv = ["superresolve", "--catalog", "antarctica", "--data-dir", str(standins)]
    argv += ["--bbox", bbox, "--bed-source", "bedmachine", "--halo", "2", "--chunks", "16"]
    with pytest.warns(DemoModelOnRealDataWarning):
        assert main([*argv, "--output", str(out)]) == 0
    # a 500 m bed gets base pixels with edges on whole km inside the bbox: 12 x 12
    assert "12 x 12 base px (48 x 48 output px)" in capsys.readouterr().out
    bed = rioxarray.open_rasterio(out).squeeze("band", drop=True)
    assert bed.shape == (48, 48)
    # the ice mask is applied by default: data exactly over grounded 1 km cells
    inputs = _open(standins, bed_source="bedmachine", margin=0)
    grounded = np.kron(inputs["ice_mask"].values >= 0.5, np.ones((4, 4), dtype=bool))
    assert 0 < grounded.sum() < grounded.size
    np.testing.assert_array_equal(np.isfinite(bed.values), grounded)
    assert float(bed.x.min()) == pytest.approx(BBOX[0] + 125)  # first 250 m centre of the region
    assert "synthetic regions only" in bed.attrs["model_warning"]


def test_output_does_not_depend_on_the_bbox():
    """Same pixels from a 16 km bbox and one 6 km larger on every side (demo model)."""
    inputs = xdeepbedmap.open_inputs("demo", margin=0)
    cx, cy = float(inputs.x.mean()), float(inputs.y.mean())
    small_box = (cx - 8_000, cy - 8_000, cx + 8_000, cy + 8_000)
    large_box = (cx - 14_000, cy - 14_000, cx + 14_000, cy + 14_000)

    def bed(box, margin):
        ds = xdeepbedmap.open_inputs("demo", region=box, margin=margin)
        return crop_to_region(superresolve(ds, halo=6), ds).compute()

    def rms_ratio(margin):
        small, large = bed(small_box, margin), bed(large_box, margin)
        shared = large.sel(x=small.x, y=small.y)
        return float(np.sqrt(np.mean((small - shared) ** 2)) / shared.std())

    assert rms_ratio(DEFAULT_MARGIN) < 1e-3
    assert rms_ratio(0) > 1e-2  # without the margin the bbox edge shows
