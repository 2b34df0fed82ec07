"""Write 250 m results: Cloud-Optimised GeoTIFF and resumable Zarr.

Both writers stream chunk by chunk (memory bounded by the chunk size, not the
domain) and never leave a file that looks complete when it is not: they build
it under ``<name>.partial`` and publish it when done
(:mod:`xdeepbedmap.atomic`). An interrupted Zarr write is resumed by calling
:func:`to_zarr` again: chunks recorded as done are neither recomputed nor
rewritten, if it is the same computation (otherwise it is refused, naming
what differs). One process writes an output at a time (a ``<name>.lock``
file). :func:`write_outputs` writes one result to several files and
computes it once. On a dask cluster the writers compute under
:func:`xdeepbedmap.cluster.keep_annotations`, so GPU tasks stay on GPU workers.
"""

from xdeepbedmap.io.cog import to_cog
from xdeepbedmap.io.identity import ResumeMismatchError
from xdeepbedmap.io.lock import OutputLockedError, output_lock
from xdeepbedmap.io.outputs import (
    OUTPUT_SUFFIXES,
    check_outputs,
    open_layers,
    open_output,
    quality_path,
    write_outputs,
)
from xdeepbedmap.io.zarr_store import IncompleteOutputError, open_zarr_output, to_zarr

__all__ = [
    "OUTPUT_SUFFIXES",
    "IncompleteOutputError",
    "OutputLockedError",
    "ResumeMismatchError",
    "check_outputs",
    "open_layers",
    "open_output",
    "open_zarr_output",
    "output_lock",
    "quality_path",
    "to_cog",
    "to_zarr",
    "write_outputs",
]
