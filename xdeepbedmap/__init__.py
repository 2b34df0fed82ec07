"""xdeepbedmap: DeepBedMap super-resolution of ice-sheet beds for xarray and dask.

The generator and its weight files live in :mod:`xdeepbedmap.model`; the
grid-nesting contract in :mod:`xdeepbedmap.grids`; catalogs and lazy loading in
:mod:`xdeepbedmap.catalog`; synthetic regions in :mod:`xdeepbedmap.synthetic`.
"""

from xdeepbedmap import accessor as _accessor  # noqa: F401  (registers ds.deepbedmap)
from xdeepbedmap._version import __version__
from xdeepbedmap.catalog import open_inputs, open_truth
from xdeepbedmap.catalog_survey import open_survey
from xdeepbedmap.inputs import assemble

__all__ = ["__version__", "assemble", "open_inputs", "open_survey", "open_truth"]
