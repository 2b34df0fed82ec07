"""Seam error of chunked super-resolution against one-window inference, per halo.

For each halo, the region is super-resolved in small chunks (many seams) and
compared with the whole region run through the network as one window (no
seams). Errors are relative to the standard deviation of the one-window output.
Writes a Markdown table and a plot (docs/seam_error.md, docs/seam_error.png).

    python benchmarks/seam_error.py [--chunks 20] [--halos 0,1,2,3,4,6,8,12,16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.catalog import open_inputs
from xdeepbedmap.inference import DEFAULT_WINDOW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="demo")
    parser.add_argument("--model", default=None, help="default: the bundled demo model")
    parser.add_argument("--chunks", type=int, default=20, help="base px per chunk (many seams)")
    parser.add_argument("--halos", default="0,1,2,3,4,6,8,12,16")
    parser.add_argument("--docs", default=str(Path(__file__).parents[1] / "docs"))
    args = parser.parse_args()
    torch.set_num_threads(2)

    ds = open_inputs(args.catalog).load()
    size = max(ds.sizes["y"], ds.sizes["x"])
    reference = ds.deepbedmap.superresolve(
        args.model, halo=size - 1, chunks=size, window=size
    ).values
    valid = np.isfinite(reference)
    scale = float(reference[valid].std())
    rows = []
    for halo in (int(h) for h in args.halos.split(",")):
        start = time.perf_counter()
        out = ds.deepbedmap.superresolve(
            args.model, halo=halo, chunks=args.chunks, window=DEFAULT_WINDOW
        ).values
        seconds = time.perf_counter() - start
        diff = np.abs(out - reference)[valid]
        rows.append((halo, diff.max() / scale, np.sqrt((diff**2).mean()) / scale, seconds))
        print(f"halo {halo:3d}: max {rows[-1][1]:.2e}  RMS {rows[-1][2]:.2e}  ({seconds:.1f} s)")

    docs = Path(args.docs)
    lines = [
        f"Region: catalog `{args.catalog}` ({ds.sizes['y']} x {ds.sizes['x']} base px), "
        f"chunks of {args.chunks} base px, output std {scale:.1f} m.",
        "",
        "| halo (base px) | max seam error / std | RMS seam error / std | time (s) |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {h} | {m:.2e} | {r:.2e} | {s:.1f} |" for h, m, r, s in rows]
    (docs / "seam_error.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    halos = [r[0] for r in rows]
    ax.semilogy(halos, [r[1] for r in rows], "o-", label="max")
    ax.semilogy(halos, [r[2] for r in rows], "s-", label="RMS")
    ax.axhline(1e-3, color="grey", ls="--", lw=1, label="RMS target 1e-3")
    ax.set(xlabel="halo (base px)", ylabel="|chunked - one window| / std", title="seam error")
    ax.legend()
    fig.savefig(docs / "seam_error.png", dpi=110)
    print(f"wrote {docs / 'seam_error.md'} and {docs / 'seam_error.png'}")


if __name__ == "__main__":
    main()
