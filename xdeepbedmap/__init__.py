"""xdeepbedmap: DeepBedMap super-resolution of ice-sheet beds for xarray and dask.

The generator and its weight files live in :mod:`xdeepbedmap.model`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xdeepbedmap")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
