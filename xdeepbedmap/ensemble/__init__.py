"""Deep ensembles: several generators whose calibrated spread estimates the bed error.

:mod:`~xdeepbedmap.ensemble.store` reads and writes ensemble folders;
:func:`superresolve_ensemble` runs one (mean bed and calibrated spread);
:mod:`~xdeepbedmap.ensemble.metrics` judges the spread against a truth.
"""

from xdeepbedmap.ensemble.inference import (
    OneMemberWarning,
    resolve_ensemble,
    superresolve_ensemble,
)
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
    "OneMemberWarning",
    "member_name",
    "read_ensemble",
    "resolve_ensemble",
    "superresolve_ensemble",
    "write_ensemble",
]
