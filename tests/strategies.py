"""Hypothesis strategies and builders for nested input grids."""

from __future__ import annotations

import numpy as np
import xarray as xr
from hypothesis import strategies as st

from xdeepbedmap.grids import VARIABLES, GeoBox, grid_coords, make_grid, zoom_in


def dataset_on(
    base: GeoBox, grids: dict[str, GeoBox] | None = None, crs: dict[str, str] | None = None
):
    """A canonical Dataset of zeros on ``base`` (or on per-variable ``grids``)."""
    grids = grids or {}
    crs = crs or {}
    variables = {}
    for name, (ydim, xdim, factor) in VARIABLES.items():
        grid = grids.get(name, zoom_in(base, factor))
        da = xr.DataArray(
            np.zeros(grid.shape, np.float32),
            dims=(ydim, xdim),
            coords=grid_coords(grid, ydim, xdim),
        )
        if name in crs:  # its own grid mapping, so the Dataset can hold two CRSs
            da = da.rio.write_crs(crs[name], grid_mapping_name=f"spatial_ref_{name}")
        else:
            da = da.rio.write_crs(str(base.crs))
        variables[name] = da
    return xr.Dataset(variables)


@st.composite
def base_grids(draw, max_size: int = 6) -> GeoBox:
    """Random 1 km base grids anywhere in the EPSG:3031 domain, edges not on round numbers."""
    ny = draw(st.integers(2, max_size))
    nx = draw(st.integers(2, max_size))
    left = draw(st.floats(-3.3e6, 3.3e6, allow_nan=False)).__round__(3)
    top = draw(st.floats(-3.3e6, 3.3e6, allow_nan=False)).__round__(3)
    return make_grid(left, top, 1000.0, (ny, nx), "EPSG:3031")


#: Variables on the finer grids. Variables sharing dims (vx and vy) share
#: coordinates in a Dataset, so a violation moves both; the error names vx.
nested_names = st.sampled_from(["surface", "vx"])


def sharing_dims(name: str) -> list[str]:
    """``name`` and the variables on the same dims."""
    dims = VARIABLES[name][:2]
    return [other for other, spec in VARIABLES.items() if spec[:2] == dims]
