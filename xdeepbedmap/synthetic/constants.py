"""Physical and generator constants of the synthetic world (see the package docstring)."""

RHO_ICE = 917.0  # kg m-3
GRAVITY = 9.81  # m s-2
GLEN_N = 3
GLEN_A = 2.4e-24  # Pa-3 s-1, physics v1 (Cuffey & Paterson 2010 give this for 0 C ice)
GLEN_A_COLD = 3.5e-25  # Pa-3 s-1, physics v2: ice at -10 C (Cuffey & Paterson 2010)
SECONDS_PER_YEAR = 365.25 * 86400
YIELD_STRESS = 5.0e4  # Pa, Nye perfectly plastic profile (ice-stream regions, low drag)
SLIDING_C = 2e-3  # m yr-1 Pa-1: linear sliding, 200 m/yr under 100 kPa in troughs
COAST_OFFSET = 20e3  # m: the profile starts at the height Nye gives 20 km inland
MIN_THICKNESS = 50.0  # m
MIN_SURFACE = 10.0  # m above sea level: grounded ice near the coast
DAMPING_LENGTH = 5.0  # bed-to-surface transfer decays at wavelengths below ~ 2 pi * 5 H
BED_SMOOTHING_SIGMA = 1.0  # base pixels
SURFACE_ROUGHNESS = 1.0  # m, std of the 100 m surface noise
ACCUMULATION_VARIABILITY = 0.1  # relative std of the smooth accumulation noise
DEFAULT_ORIGIN = (-1_600_000.0, -200_000.0)  # (left, top) in EPSG:3031, West Antarctica
# physics v2 (see xdeepbedmap.synthetic.ice)
SLIP_RATIO_SLOW = 0.5  # sliding / deformation velocity of slow sheet flow on harder, higher beds
SLIP_RATIO_STREAM = 100.0  # of an ice stream on a soft, wet bed below sea level
WET_BED_WIDTH = 100.0  # m: the slip ratio switches over beds within ~ +-100 m of sea level
SLIP_SMOOTHING = 2000.0  # m: the slip ratio varies over a few km, not pixel by pixel
SPEED_SATURATION = 4000.0  # m/yr, v2 speeds saturate near the fastest ice streams
