"""Seam error of chunked super-resolution against one-window inference, per halo.

For each region, chunking and halo, the region is super-resolved in small
chunks (many seams) and compared with the whole region run through the
network as one window (no seams). Errors are relative to the standard
deviation of the one-window output. The regions are the demo catalog's and
synthetic ones (the bundled model was trained on synthetic regions). A
throughput line compares halos on one larger region in big chunks (where the
halo's cost is what it will be in production), side by side in the same run.
Writes a Markdown table and a plot (docs/seam_error.md, docs/seam_error.png).

    python benchmarks/seam_error.py [--chunks 16,20] [--halos 8,10,12,14,16]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.catalog import open_inputs
from xdeepbedmap.inference import DEFAULT_WINDOW
from xdeepbedmap.synthetic import make_region


def _regions(catalog: str, seeds: list[int], sizes: list[int]) -> dict[str, xr.Dataset]:
    out = {f"catalog {catalog}": open_inputs(catalog).load()}
    for seed, size in zip(seeds, sizes, strict=True):
        out[f"synthetic seed {seed}"] = make_region((size, size), seed=seed)[0]
    return out


def seam_rows(ds: xr.Dataset, model, chunkings: list[int], halos: list[int]) -> list[tuple]:
    """``(chunks, halo, max / std, RMS / std)`` for one region."""
    size = max(ds.sizes["y"], ds.sizes["x"])
    reference = ds.deepbedmap.superresolve(model, halo=size - 1, chunks=size, window=size).values
    valid = np.isfinite(reference)
    scale = float(reference[valid].std())
    rows = []
    for chunks in chunkings:
        for halo in halos:
            out = ds.deepbedmap.superresolve(
                model, halo=halo, chunks=chunks, window=DEFAULT_WINDOW
            ).values
            diff = np.abs(out - reference)[valid]
            rows.append((chunks, halo, diff.max() / scale, np.sqrt((diff**2).mean()) / scale))
    return rows


def speed(model, size: int, halos: list[int], repeats: int = 2) -> dict[int, float]:
    """Base px/s per halo on one ``size`` x ``size`` region in one chunk (best of ``repeats``)."""
    ds = make_region((size, size), seed=7)[0]
    rates = {}
    for halo in halos:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            ds.deepbedmap.superresolve(model, halo=halo, chunks=size)
            best = min(best, time.perf_counter() - start)
        rates[halo] = size * size / best
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="demo")
    parser.add_argument("--model", default=None, help="default: the bundled demo model")
    parser.add_argument("--chunks", default="16,20", help="base px per chunk (many seams)")
    parser.add_argument("--halos", default="8,10,12,14,16")
    parser.add_argument("--seeds", default="101,202", help="synthetic regions' seeds")
    parser.add_argument("--sizes", default="64,56", help="synthetic regions' sizes (base px)")
    parser.add_argument("--speed-size", type=int, default=128, help="0 skips the speed line")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--docs", default=str(Path(__file__).parents[1] / "docs"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # range/gap warnings of the synthetic inputs
    halos = [int(h) for h in args.halos.split(",")]
    chunkings = [int(c) for c in args.chunks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]

    table = []
    for name, ds in _regions(args.catalog, seeds, sizes).items():
        for chunks, halo, mx, rms in seam_rows(ds, args.model, chunkings, halos):
            label = f"{name} ({ds.sizes['y']} x {ds.sizes['x']})"
            table.append((label, chunks, halo, mx, rms))
            print(f"{label}, chunks {chunks}, halo {halo:2d}: max {mx:.2e}  RMS {rms:.2e}")
    rates = speed(args.model, args.speed_size, halos) if args.speed_size else {}
    for halo, rate in rates.items():
        print(f"halo {halo:2d}: {rate:,.0f} base px/s ({args.speed_size}^2 region, one chunk)")

    lines = [
        "| region | chunks (base px) | halo (base px) | max seam error / std | RMS / std |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r} | {c} | {h} | {m:.2e} | {s:.2e} |" for r, c, h, m, s in table]
    worst = {h: max(s for _, _, hh, _, s in table if hh == h) for h in halos}
    lines += ["", "| halo | worst RMS / std | base px/s (one chunk) |", "|---:|---:|---:|"]
    lines += [f"| {h} | {worst[h]:.2e} | {rates.get(h, float('nan')):,.0f} |" for h in halos]
    docs = Path(args.docs)
    (docs / "seam_error.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    for label in dict.fromkeys((r, c) for r, c, *_ in table):
        rows = [t for t in table if (t[0], t[1]) == label]
        ax.semilogy(
            [t[2] for t in rows], [t[4] for t in rows], "o-", label=f"{label[0]}, {label[1]}"
        )
    ax.axhline(1e-4, color="grey", ls="--", lw=1, label="RMS target 1e-4")
    ax.set(xlabel="halo (base px)", ylabel="RMS |chunked - one window| / std", title="seam error")
    ax.legend(fontsize=6)
    fig.savefig(docs / "seam_error.png", dpi=110)
    plt.close(fig)
    print(f"wrote {docs / 'seam_error.md'} and {docs / 'seam_error.png'}")


if __name__ == "__main__":
    main()
