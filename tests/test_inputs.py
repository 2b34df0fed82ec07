"""assemble's grid decisions: which base grid, and cut or resample each raster."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xdeepbedmap.grids import grid_coords, make_grid, validate_inputs, zoom_in
from xdeepbedmap.inputs import assemble

BASE = make_grid(-1_000_000.3, 500_000.0, 1000.0, (6, 8))


def raster(grid, name, dtype=np.float64, shift=(0.0, 0.0)):
    """A ramp on ``grid`` (coordinates moved by ``shift`` metres, stored as ``dtype``)."""
    coords = grid_coords(grid)
    y, x = coords["y"][1] + shift[1], coords["x"][1] + shift[0]
    values = 0.01 * x[None, :] + 0.02 * y[:, None]
    coords = {"y": y.astype(dtype), "x": x.astype(dtype)}
    return xr.DataArray(values, dims=("y", "x"), coords=coords, name=name).rio.write_crs(
        "EPSG:3031"
    )


def rasters(**changed):
    """The five inputs on grids nested in BASE, a margin around the nested ones."""
    wide = make_grid(-1_004_000.3, 504_000.0, 1000.0, (14, 16))
    out = {
        "bed": raster(BASE, "bed"),
        "accumulation": raster(BASE, "accumulation"),
        "surface": raster(zoom_in(wide, 10), "surface"),
        "vx": raster(zoom_in(wide, 2), "vx"),
        "vy": raster(zoom_in(wide, 2), "vy"),
    }
    out.update(changed)
    return out


def test_nested_rasters_are_cut_not_resampled_even_with_float32_coordinates():
    wide = make_grid(-1_004_000.3, 504_000.0, 1000.0, (14, 16))
    ds = assemble(**rasters(surface=raster(zoom_in(wide, 10), "surface", np.float32)))
    assert not any("xdeepbedmap_resampled" in ds[v].attrs for v in ds.data_vars)
    assert validate_inputs(ds).shape == BASE.shape
    np.testing.assert_array_equal(ds["vx"].x_velocity, grid_coords(zoom_in(BASE, 2))["x"][1])


def test_shifted_raster_is_resampled_and_says_so():
    wide = make_grid(-1_004_000.3, 504_000.0, 1000.0, (14, 16))
    shifted = raster(zoom_in(wide, 2), "vx", shift=(150.0, 0.0))  # 0.3 px off the nest
    ds = assemble(**rasters(vx=shifted))
    assert ds["vx"].attrs["xdeepbedmap_resampled"] == "bilinear from 500 m"
    assert "xdeepbedmap_resampled" not in ds["vy"].attrs
    # bilinear is exact for a ramp inside the source
    yy, xx = np.meshgrid(ds.y_velocity.values, ds.x_velocity.values, indexing="ij")
    np.testing.assert_allclose(ds["vx"].values, 0.01 * xx + 0.02 * yy, rtol=1e-6)


def test_bed_at_another_resolution_gets_a_new_grid_inside_the_bbox():
    bed = raster(make_grid(-1.0e6, 5.0e5, 500.0, (12, 16)), "bed")
    bbox = (-999_700.0, 496_100.0, -994_200.0, 499_900.0)
    ds = assemble(**rasters(bed=bed), bbox=bbox)
    base = validate_inputs(ds)
    # edges on whole kilometres, inside the bbox: x -999000..-995000, y 497000..499000
    assert base.boundingbox.bbox == (-999_000.0, 497_000.0, -995_000.0, 499_000.0)
    assert ds["bed"].attrs["xdeepbedmap_resampled"] == "average from 500 m"
    with pytest.raises(ValueError, match="smaller than one 1000 m base pixel"):
        assemble(**rasters(bed=bed), bbox=(-999_700.0, 497_100.0, -999_100.0, 499_900.0))
