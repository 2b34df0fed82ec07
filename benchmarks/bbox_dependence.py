"""How much the output for a pixel depends on the bbox it was requested with.

Super-resolves a bbox of the demo catalog and the same bbox grown by
``--grow`` km on every side with the bundled demo model, both read with
``margin`` base pixels of true data, and compares the pixels they share, by
distance from the smaller bbox's edge. ``--margin 0`` is the behaviour before
margins existed (inputs cut at the bbox and mirror-padded).

    python benchmarks/bbox_dependence.py --margin 0
    python benchmarks/bbox_dependence.py            # default margin
"""

from __future__ import annotations

import argparse

import numpy as np

import xdeepbedmap
from xdeepbedmap.inference import superresolve
from xdeepbedmap.region import DEFAULT_MARGIN, crop_to_region


def run(bbox, margin: int, chunks: int = 256):
    ds = xdeepbedmap.open_inputs("demo", region=bbox, margin=margin, chunks=chunks)
    return crop_to_region(superresolve(ds), ds).compute()


def edge_table(small, large, bins_km=(1, 2, 3, 4, 5, 8, 12, 20)):
    """Max and RMS of ``small - large`` on their shared pixels by distance from ``small``'s edge."""
    shared = large.sel(x=small.x, y=small.y)
    diff = np.abs(small.values - shared.values)
    ny, nx = diff.shape
    rows = np.minimum(np.arange(ny), np.arange(ny)[::-1])[:, None]
    cols = np.minimum(np.arange(nx), np.arange(nx)[::-1])[None, :]
    dist_km = (np.minimum(rows, cols) + 0.5) * 0.25
    std = float(np.nanstd(shared.values))
    table, lo = [], 0.0
    for hi in bins_km:
        sel = (dist_km >= lo) & (dist_km < hi)
        if sel.any():
            d = diff[sel]
            table.append((lo, hi, float(d.max()), float(np.sqrt(np.mean(d**2)))))
        lo = hi
    overall = float(np.sqrt(np.mean(diff**2))) / std
    return table, overall, std


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margin", type=int, default=DEFAULT_MARGIN)
    parser.add_argument("--grow", type=float, default=10.0, help="km added on every side")
    parser.add_argument("--size", type=float, default=40.0, help="km, side of the small bbox")
    args = parser.parse_args()
    inputs = xdeepbedmap.open_inputs("demo", margin=0)
    cx, cy = float(inputs.x.mean()), float(inputs.y.mean())
    h, g = args.size * 500.0, args.grow * 1000.0
    small_box = (cx - h, cy - h, cx + h, cy + h)
    large_box = (cx - h - g, cy - h - g, cx + h + g, cy + h + g)
    small = run(small_box, args.margin)
    large = run(large_box, args.margin)
    table, rel, std = edge_table(small, large)
    print(f"margin {args.margin} base px; small bbox {args.size:g} km, large +{args.grow:g} km")
    print("| distance from bbox edge (km) | max abs diff (m) | RMS (m) |")
    print("|---|---|---|")
    for lo, hi, mx, rms in table:
        print(f"| {lo:g}-{hi:g} | {mx:.3g} | {rms:.3g} |")
    print(f"overall RMS / output std ({std:.0f} m): {rel:.2e}")


if __name__ == "__main__":
    main()
