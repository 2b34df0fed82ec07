"""Synthetic but physically plausible regions: a 250 m "true" bed and its inputs.

The demo, the tests and the bundled demo model use these regions, so they must
relate the way the real products relate to the real bed. One paragraph per
field:

**Bed (1 km, BEDMAP2-like).** BEDMAP2 interpolates sparse radar lines onto a
1 km grid, so it is a smoothed average of the true bed. We take the 4 x 4 block
mean of the 250 m truth and smooth it with a Gaussian of
``BED_SMOOTHING_SIGMA`` base pixels (NaN-aware); a base pixel touching no-data
(ocean) is no-data.

**Surface (100 m, REMA-like).** Ice flowing over a bed transmits its long
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

from xdeepbedmap.synthetic.constants import (
    ACCUMULATION_VARIABILITY,
    BED_SMOOTHING_SIGMA,
    DEFAULT_ORIGIN,
    MIN_THICKNESS,
    SURFACE_ROUGHNESS,
)
from xdeepbedmap.synthetic.regions import inputs_from_bed, make_region, training_regions
from xdeepbedmap.synthetic.terrain import _nan_gaussian, block_mean, make_truth

__all__ = [
    "ACCUMULATION_VARIABILITY",
    "BED_SMOOTHING_SIGMA",
    "DEFAULT_ORIGIN",
    "MIN_THICKNESS",
    "SURFACE_ROUGHNESS",
    "_nan_gaussian",
    "block_mean",
    "inputs_from_bed",
    "make_region",
    "make_truth",
    "training_regions",
]
