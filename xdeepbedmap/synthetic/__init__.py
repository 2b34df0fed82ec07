"""Synthetic but physically plausible regions: a 250 m "true" bed and its inputs.

The demo, the tests and the bundled demo model use these regions, so they must
relate the way the real products relate to the real bed. One paragraph per
field:

**Bed (1 km, BEDMAP2-like).** BEDMAP2 interpolates sparse radar lines onto a
1 km grid. Two models (``bed_model``): ``"block_mean"`` (default, world v1)
takes the 4 x 4 block mean of the 250 m truth and smooths it with a Gaussian
of ``BED_SMOOTHING_SIGMA`` base pixels (NaN-aware): a perfectly surveyed
BEDMAP2. ``"survey"`` (world v2) samples the truth along synthetic flight
lines 6-15 km apart, with dense patches and 30-60 km gaps, and interpolates
them with a damped spline (:mod:`xdeepbedmap.synthetic.bedmap_like`): accurate
near the lines, hundreds of metres off far from them (``docs/synthetic.md``).
Either way a base pixel touching no-data (ocean) is no-data.

**Worlds.** :data:`WORLDS` names the combinations: ``"v1"`` (block-mean bed,
physics v1; the default and the bundled model's) and ``"v2"`` (survey bed,
physics v2: slip-ratio-dependent bed-to-surface transfer and sliding, see
:mod:`xdeepbedmap.synthetic.ice`). ``make_region(shape, seed, **WORLDS["v2"])``.

**Surface (100 m, REMA-like).** (Physics v1; v2 is described in
:mod:`xdeepbedmap.synthetic.ice`.) Ice flowing over a bed transmits its long
wavelengths to the surface and damps the short ones (Gudmundsson 2003): we
filter the bed anomaly with the transfer function ``1 / (1 + (5 k H)^2)`` (k the
angular wavenumber, H the mean ice thickness) and add it to a perfectly plastic
ice-sheet profile ``sqrt(2 tau_0 (d + 20 km) / (rho g))`` rising with
distance ``d`` from the coast (Nye 1951, ``tau_0`` = 50 kPa as over low-drag
ice-stream beds; the 20 km offset stands for the grounding zone). Ice is at
least ``MIN_THICKNESS`` thick and its surface stays above sea level. The 250 m
surface is interpolated (bilinear) to 100 m and gets ``SURFACE_ROUGHNESS``
metres (std) of spatially correlated DEM-like roughness.

**Velocity (500 m, MEaSUREs-like).** Shallow-ice approximation: the driving
stress ``rho g H |grad s|`` (surface slope smoothed over a few ice
thicknesses, as longitudinal stresses do) gives internal deformation
``2A/(n+1) (rho g |grad s|)^n H^(n+1)`` (Glen's law, n = 3, A = 2.4e-24
Pa^-3 s^-1) plus linear sliding ``C tau_b`` where the bed lies below sea
level (soft, wet trough beds). Ice flows down the surface gradient, so thick
ice in troughs flows fastest. ``vx`` and ``vy`` are 2 x 2 block means of the
250 m field.

**Accumulation (1 km, Arthern-like).** Snowfall decreases with elevation and
distance from the coast: ``a_0 exp(-s / s_0)`` plus a floor, with 10% smooth
spatial variability, in kg m-2 yr-1, on the 1 km grid.
"""

from __future__ import annotations

from xdeepbedmap.synthetic.bedmap_like import survey_bed, survey_picks
from xdeepbedmap.synthetic.constants import (
    ACCUMULATION_VARIABILITY,
    BED_SMOOTHING_SIGMA,
    DEFAULT_ORIGIN,
    MIN_THICKNESS,
    SURFACE_ROUGHNESS,
)
from xdeepbedmap.synthetic.ice import bed_to_surface_transfer, slip_ratio
from xdeepbedmap.synthetic.regions import WORLDS, inputs_from_bed, make_region, training_regions
from xdeepbedmap.synthetic.terrain import _nan_gaussian, block_mean, make_truth

__all__ = [
    "ACCUMULATION_VARIABILITY",
    "BED_SMOOTHING_SIGMA",
    "DEFAULT_ORIGIN",
    "MIN_THICKNESS",
    "SURFACE_ROUGHNESS",
    "WORLDS",
    "_nan_gaussian",
    "bed_to_surface_transfer",
    "block_mean",
    "inputs_from_bed",
    "make_region",
    "make_truth",
    "slip_ratio",
    "survey_bed",
    "survey_picks",
    "training_regions",
]
