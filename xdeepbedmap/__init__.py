"""xdeepbedmap: DeepBedMap super-resolution of ice-sheet beds for xarray and dask.

The generator and its weight files live in :mod:`xdeepbedmap.model`; the
grid-nesting contract in :mod:`xdeepbedmap.grids`; catalogs and lazy loading in
:mod:`xdeepbedmap.catalog`; synthetic regions in :mod:`xdeepbedmap.synthetic`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xdeepbedmap")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from xdeepbedmap import accessor as _accessor  # noqa: E402,F401  (registers ds.deepbedmap)
from xdeepbedmap.catalog import open_inputs, open_truth  # noqa: E402
from xdeepbedmap.inputs import assemble  # noqa: E402

__all__ = ["__version__", "assemble", "open_inputs", "open_truth"]
