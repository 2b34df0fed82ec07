"""How much the gap fill (and the bed around a gap) depends on where the region starts.

Cuts a square surface gap into a synthetic region, then fills (and
super-resolves with the bundled demo model) two windows of it that both hold
the gap well inside but start at different base pixels. Reported: the max and
RMS difference of the filled surface inside the gap, and of the bed inside
the gap and within 5 km of it, on the pixels the windows share. The script
calls only ``plan_fill``/``fill_inputs`` and ``superresolve``, so it also runs
on an older checkout (``PYTHONPATH=/tmp/old python benchmarks/gap_anchoring.py``).

    python benchmarks/gap_anchoring.py [--size 64] [--gap 12] [--shift 3 5]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.chunking import rechunk_nested
from xdeepbedmap.gapfill import fill_inputs, plan_fill

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.gap_effect import region_with_central_gap  # noqa: E402


def _window(ds, r0: int, c0: int, n: int):
    """Base pixels ``r0 : r0 + n`` x ``c0 : c0 + n`` of every input."""
    cut = {"y": slice(r0, r0 + n), "x": slice(c0, c0 + n)}
    for f, suffix in ((10, "_surface"), (2, "_velocity")):
        cut[f"y{suffix}"] = slice(f * r0, f * (r0 + n))
        cut[f"x{suffix}"] = slice(f * c0, f * (c0 + n))
    return ds.isel(cut)


def _stats(a, b, where) -> str:
    d = np.abs(a - b)[where & np.isfinite(a) & np.isfinite(b)]
    return f"{d.max():.3g} / {np.sqrt((d**2).mean()):.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="region size, base px")
    parser.add_argument("--gap", type=int, default=12, help="gap size, base px (km)")
    parser.add_argument("--shift", type=int, nargs=2, default=(3, 5), help="second window's start")
    parser.add_argument("--seed", type=int, default=101)
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")

    _, ds, gap = region_with_central_gap(args.size, args.gap, args.seed)
    n = args.size - max(args.shift)
    windows = [(0, 0), tuple(args.shift)]
    surfaces, beds = [], []
    for r0, c0 in windows:
        win = rechunk_nested(_window(ds, r0, c0, n), n)
        filled = fill_inputs(win, plan_fill(win))["surface"][0].compute()
        surfaces.append((r0, c0, filled))
        beds.append((r0, c0, win.deepbedmap.superresolve(chunks=n).values))
    # the shared part, in the second window's frame
    (a0, b0, fa), (a1, b1, fb) = surfaces
    r, c = a1 - a0, b1 - b0
    m = n - max(r, c)
    shared_fill = (fa[10 * r : 10 * (r + m), 10 * c : 10 * (c + m)], fb[: 10 * m, : 10 * m])
    in_gap = np.kron(gap[a1 : a1 + m, b1 : b1 + m], np.ones((10, 10), bool))
    (_, _, ba), (_, _, bb) = beds
    shared_bed = (ba[4 * r : 4 * (r + m), 4 * c : 4 * (c + m)], bb[: 4 * m, : 4 * m])
    gap4 = np.kron(gap[a1 : a1 + m, b1 : b1 + m], np.ones((4, 4), bool))
    ring = (ndimage.distance_transform_edt(~gap4) * 0.25 <= 5) & ~gap4
    print(f"region {args.size} km, gap {args.gap} km, windows {n} km at {windows}")
    print("| compared | max / RMS (m) |")
    print("|---|---:|")
    print(f"| filled surface inside the gap | {_stats(*shared_fill, in_gap)} |")
    print(f"| bed inside the gap | {_stats(*shared_bed, gap4)} |")
    print(f"| bed 0-5 km from the gap | {_stats(*shared_bed, ring)} |")


if __name__ == "__main__":
    main()
