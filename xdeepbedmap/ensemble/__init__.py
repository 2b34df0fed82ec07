"""Deep ensembles: several generators whose calibrated spread estimates the bed error.

:mod:`~xdeepbedmap.ensemble.store` reads and writes ensemble folders.
"""

from xdeepbedmap.ensemble.store import (
    BUNDLED_ENSEMBLE,
    ENSEMBLE_FORMAT,
    MANIFEST,
    Calibration,
    Ensemble,
    EnsembleError,
    member_name,
    read_ensemble,
    write_ensemble,
)

__all__ = [
    "BUNDLED_ENSEMBLE",
    "ENSEMBLE_FORMAT",
    "MANIFEST",
    "Calibration",
    "Ensemble",
    "EnsembleError",
    "member_name",
    "read_ensemble",
    "write_ensemble",
]
