"""Plot the bed-to-surface transfer of the synthetic physics (v1 and v2) to docs/transfer_curve.png.

v1: ``1 / (1 + (5 kH)^2)`` whatever the ice does; v2:
:func:`xdeepbedmap.synthetic.bed_to_surface_transfer` for slip ratios from
frozen-bed sheet flow to ice streams (see :mod:`xdeepbedmap.synthetic.ice`).
The x axis is the wavelength in ice thicknesses, with the 2-50 km band under
1.5 km of ice marked. Prints the half-transfer wavelengths.

    python benchmarks/transfer_curve.py [--output docs/transfer_curve.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from xdeepbedmap.synthetic import bed_to_surface_transfer
from xdeepbedmap.synthetic.constants import DAMPING_LENGTH

SLIPS = (0.0, 0.5, 10.0, 100.0, 1000.0)
THICKNESS = 1500.0  # m, to mark the 2-50 km band


def half_wavelengths() -> dict[float, float]:
    """Wavelength (in ice thicknesses) at which half of the bed reaches the surface."""
    out = {}
    for slip in SLIPS:
        kh = brentq(lambda k, c=slip: float(bed_to_surface_transfer(k, c)) - 0.5, 1e-4, 20.0)
        out[slip] = 2 * np.pi / kh
    return out


def plot(path: Path) -> None:
    import matplotlib.pyplot as plt

    ratio = np.logspace(-0.3, 2.5, 300)  # wavelength / H
    kh = 2 * np.pi / ratio
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    ax.axvspan(2e3 / THICKNESS, 50e3 / THICKNESS, color="0.92", label="2-50 km under 1.5 km of ice")
    ax.plot(ratio, 1 / (1 + (DAMPING_LENGTH * kh) ** 2), "k--", label="v1: 1/(1+(5kH)²)")
    for slip in SLIPS:
        ax.plot(ratio, bed_to_surface_transfer(kh, slip), label=f"v2, slip ratio C = {slip:g}")
    ax.set_xscale("log")
    ax.set_xlabel("bed wavelength / ice thickness")
    ax.set_ylabel("surface / bed amplitude")
    ax.set_title("Bed-to-surface transfer (v2: sech(kH) / (1 + 25 (kH)² / (1 + C)))")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper left")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="docs/transfer_curve.png")
    args = parser.parse_args()
    print("| slip ratio C | half transfer at wavelength / H |\n|---|---|")
    for slip, ratio in half_wavelengths().items():
        print(f"| {slip:g} | {ratio:.1f} |")
    plot(Path(args.output))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
