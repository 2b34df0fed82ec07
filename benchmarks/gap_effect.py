"""Effect of a surface gap on the super-resolved bed, and its chunk dependence.

A synthetic region is super-resolved with the bundled demo model twice: with
its full surface, and with a square gap cut into the surface (filled by the
library). Reported: the max and RMS of |gap run - no-gap run| inside the gap
and in rings around it (by distance from the gap's edge), and the largest
difference between a chunked and a one-window run of the gap input. The
script only calls ``superresolve``, so it also runs on an older checkout
(``PYTHONPATH=/tmp/old python benchmarks/gap_effect.py``) for a before/after.

    python benchmarks/gap_effect.py [--size 64] [--gap 24] [--chunks 16]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from scipy import ndimage

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.synthetic import make_region


def region_with_central_gap(size: int, gap: int, seed: int):
    """A synthetic region, the same with a central square of no surface data, and that square.

    Returns ``(ds, gappy, cells)``: ``size`` km side, a ``gap`` km square gap,
    its base cells as a ``size x size`` bool array.
    """
    ds = make_region((size, size), seed=seed)[0]
    lo = (size - gap) // 2
    cells = np.zeros((size, size), bool)
    cells[lo : lo + gap, lo : lo + gap] = True
    gappy = ds.assign(surface=ds.surface.where(~np.kron(cells, np.ones((10, 10), bool))))
    return ds, gappy, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="region size, base px")
    parser.add_argument("--gap", type=int, default=24, help="gap size, base px (km)")
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--halo", type=int, default=None)
    parser.add_argument("--seed", type=int, default=101)
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")

    ds, gappy, gap_cells = region_with_central_gap(args.size, args.gap, args.seed)
    n = args.size
    options = {"halo": args.halo}
    full = ds.deepbedmap.superresolve(chunks=n, **options).values
    one = gappy.deepbedmap.superresolve(chunks=n, **options).values
    chunked = gappy.deepbedmap.superresolve(chunks=args.chunks, **options).values
    scale = float(np.nanstd(full))

    distance = ndimage.distance_transform_edt(~np.kron(gap_cells, np.ones((4, 4), bool))) * 0.25
    rings = {"inside the gap": distance == 0}
    for a, b in ((0, 2), (2, 5), (5, 10), (10, 1e9)):
        rings[f"{a}-{b if b < 1e9 else 'inf'} km from it"] = (distance > a) & (distance <= b)
    print(f"region {n} x {n} km, surface gap {args.gap} x {args.gap} km, output std {scale:.0f} m")
    print("| where | max abs(gap - no gap) (m) | RMS (m) |")
    print("|---|---:|---:|")
    for name, where in rings.items():
        d = np.abs(one - full)[where & np.isfinite(full)]
        if d.size:
            print(f"| {name} | {d.max():.1f} | {np.sqrt((d**2).mean()):.1f} |")
    d = np.abs(chunked - one)[np.isfinite(one)]
    print(f"chunks {args.chunks} vs one window, gap input: max {d.max():.3g} m, "
          f"RMS {np.sqrt((d**2).mean()):.3g} m ({d.max() / scale:.1e} of the std)")  # fmt: skip


if __name__ == "__main__":
    main()
