"""The ``ds.deepbedmap`` accessor: a thin layer over the library's free functions."""

from __future__ import annotations

from typing import Any

import xarray as xr

from xdeepbedmap import baselines, ensemble, inference
from xdeepbedmap.grids import GeoBox, validate_inputs

__all__ = ["DeepBedMapAccessor"]


@xr.register_dataset_accessor("deepbedmap")
class DeepBedMapAccessor:
    """DeepBedMap methods on a canonical input Dataset (``ds.deepbedmap``)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def validate(self) -> GeoBox:
        """Check the grid-nesting contract; see :func:`xdeepbedmap.grids.validate_inputs`."""
        return validate_inputs(self._ds)

    def superresolve(self, model: Any = None, **kwargs: Any) -> xr.DataArray | xr.Dataset:
        """Super-resolve to a 250 m bed (with ``quality=True``, and its quality layer).

        See :func:`xdeepbedmap.inference.superresolve`; every keyword is forwarded.
        """
        return inference.superresolve(self._ds, model, **kwargs)

    def superresolve_ensemble(self, models: Any = None, **kwargs: Any) -> xr.Dataset:
        """Ensemble mean bed and calibrated spread (``bed``, ``bed_std``).

        See :func:`xdeepbedmap.ensemble.superresolve_ensemble`; every keyword is forwarded.
        """
        return ensemble.superresolve_ensemble(self._ds, models, **kwargs)

    def bicubic(self) -> xr.DataArray:
        """Bicubic 250 m baseline; see :func:`xdeepbedmap.baselines.bicubic`."""
        return baselines.bicubic(self._ds)
