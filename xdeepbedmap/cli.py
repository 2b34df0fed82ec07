"""Command line interface: ``xdeepbedmap <command> ...``.

Every command reports failures as one ``error: ...`` line on stderr and a
non-zero exit status, never as a traceback (set ``XDEEPBEDMAP_DEBUG=1`` to see
the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _cmd_convert_weights(args: argparse.Namespace) -> int:
    from xdeepbedmap.model import load_chainer_weights, save_checkpoint

    source = Path(args.input)
    if not source.exists():
        raise FileNotFoundError(f"Chainer weights file not found: {source}")
    model = load_chainer_weights(source, residual_scaling=args.residual_scaling)
    out = save_checkpoint(
        model,
        args.output,
        source=source.name,
        converted_from="chainer save_npz",
    )
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {out}: {model.num_residual_blocks} residual blocks, "
        f"residual scaling {model.residual_scaling}, {n_params:,} parameters"
    )
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    import xdeepbedmap
    from xdeepbedmap.model import Generator, load_checkpoint

    model = load_checkpoint(args.model) if args.model else Generator(args.blocks)
    n = args.window
    inputs = (
        torch.zeros(1, 1, n, n),
        torch.zeros(1, 1, 10 * n, 10 * n),
        torch.zeros(1, 2, 2 * n, 2 * n),
        torch.zeros(1, 1, n, n),
    )
    with torch.inference_mode():
        start = time.perf_counter()
        out = model.eval()(*inputs)
        elapsed = time.perf_counter() - start
    print(f"xdeepbedmap {xdeepbedmap.__version__}, torch {torch.__version__}")
    print(
        f"generator: {model.hyperparameters}, {sum(p.numel() for p in model.parameters()):,} params"
    )
    print(
        f"{n} x {n} base window -> {tuple(out.shape[-2:])} output px "
        f"in {elapsed:.3f} s ({n * n / elapsed:,.0f} base px/s, {torch.get_num_threads()} threads)"
    )
    return 0


def _cmd_make_demo_data(args: argparse.Namespace) -> int:
    from xdeepbedmap.catalog import write_demo_data

    written = write_demo_data(args.directory)
    for role, path in written.items():
        print(f"{role:>12}: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def _cmd_plot_inputs(args: argparse.Namespace) -> int:
    from xdeepbedmap.catalog import open_inputs, open_truth
    from xdeepbedmap.plot import plot_inputs

    ds = open_inputs(args.catalog, region=_parse_bbox(args.bbox), data_dir=args.data_dir)
    truth = None
    if args.truth:
        truth = open_truth(args.catalog, data_dir=args.data_dir)
        truth = truth.sel(
            x=slice(*ds.x_surface.values[[0, -1]]), y=slice(*ds.y_surface.values[[0, -1]])
        )
    plot_inputs(ds, truth=truth, path=args.output)
    print(f"wrote {args.output}")
    return 0


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"--bbox must be xmin,ymin,xmax,ymax in metres, got {text!r}")
    try:
        xmin, ymin, xmax, ymax = (float(p) for p in parts)
    except ValueError as err:
        raise ValueError(f"--bbox must be four numbers, got {text!r}") from err
    return xmin, ymin, xmax, ymax


def _cmd_superresolve(args: argparse.Namespace) -> int:
    import dask
    from dask.diagnostics import ProgressBar

    from xdeepbedmap.baselines import bicubic
    from xdeepbedmap.catalog import open_inputs, open_truth
    from xdeepbedmap.inference import superresolve
    from xdeepbedmap.io import to_cog, to_zarr

    outputs = [Path(p) for p in args.output]
    for out in outputs:
        if out.suffix.lower() not in {".tif", ".tiff", ".zarr"}:
            raise ValueError(f"--output {out}: expected a .tif, .tiff or .zarr path")
        if out.exists() and not args.overwrite:
            raise FileExistsError(f"--output {out} exists; pass --overwrite to replace it")
    if args.figure and Path(args.figure).suffix.lower() != ".png":
        raise ValueError(f"--figure {args.figure}: expected a .png path")

    # everything that can fail on bad input fails here, before any output is written
    ds = open_inputs(
        args.catalog, region=_parse_bbox(args.bbox), chunks=args.chunks, data_dir=args.data_dir
    )
    result = superresolve(
        ds,
        args.model,
        halo=args.halo,
        window=args.window,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
    )
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    n_chunks = len(result.chunks[0]) * len(result.chunks[1])
    print(
        f"super-resolving {ny} x {nx} base px ({4 * ny} x {4 * nx} output px) from "
        f"catalog {args.catalog} with {result.attrs['model']}, "
        f"{n_chunks} chunks, halo {result.attrs['halo_base_px']}"
    )
    # the resumable Zarr store first: later outputs are copied from it
    outputs.sort(key=lambda p: p.suffix.lower() != ".zarr")
    client = None
    if args.cluster or args.scheduler:
        from xdeepbedmap.cluster import connect

        client = connect(args.cluster or "local", args.scheduler)
        print(f"dask cluster: {client.dashboard_link}")
    start = time.perf_counter()
    written = []
    scheduler = (
        contextlib.nullcontext() if client is not None else dask.config.set(scheduler="threads")
    )
    progress = contextlib.nullcontext() if client is not None else ProgressBar(minimum=1.0, dt=0.5)
    with scheduler, progress:
        for i, out in enumerate(outputs):
            # later outputs are copied from the first one, not recomputed
            source = result if i == 0 else _reopen(written[0])
            if out.suffix.lower() == ".zarr":
                if out.with_name(out.name + ".partial").exists():
                    print(f"resuming the interrupted write of {out}")
                written.append(to_zarr(source, out, overwrite=args.overwrite))
            else:
                written.append(to_cog(source, out, overwrite=args.overwrite))
    elapsed = time.perf_counter() - start
    if args.figure:
        truth = None
        if args.truth:
            truth = open_truth(args.catalog, data_dir=args.data_dir)
            truth = truth.sel(x=result.x, y=result.y, method="nearest", tolerance=1.0)
        from xdeepbedmap.plot import plot_comparison

        plot_comparison(
            ds, {"bicubic": bicubic(ds), "DeepBedMap": _reopen(written[0])}, truth, args.figure
        )
        written.append(Path(args.figure))
    print(
        f"done in {elapsed:.1f} s: {ny * nx / elapsed:,.0f} base px/s "
        f"({16 * ny * nx / elapsed:,.0f} output px/s)"
    )
    for path in written:
        print(f"  wrote {path}")
    if client is not None:
        cluster = client.cluster
        client.close()
        if cluster is not None and not args.scheduler:
            cluster.close()
    return 0


def _reopen(path: Path):  # -> xr.DataArray
    if path.suffix.lower() == ".zarr":
        from xdeepbedmap.io import open_zarr_output

        return open_zarr_output(path)["bed"]
    import rioxarray

    da = rioxarray.open_rasterio(path, masked=True, chunks={"band": 1, "y": 2048, "x": 2048})
    return da.squeeze("band", drop=True)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``xdeepbedmap`` command."""
    import xdeepbedmap

    parser = argparse.ArgumentParser(
        prog="xdeepbedmap", description="DeepBedMap super-resolution for xarray and dask."
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {xdeepbedmap.__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser(
        "convert-weights",
        help="convert published Chainer DeepBedMap weights (.npz) to a checkpoint",
        description="Read a Chainer save_npz generator file and write an xdeepbedmap "
        "checkpoint (.safetensors) holding the weights and hyperparameters.",
    )
    convert.add_argument("input", help="Chainer save_npz file of a DeepBedMap generator")
    convert.add_argument("output", help="checkpoint to write, e.g. deepbedmap.safetensors")
    convert.add_argument(
        "--residual-scaling",
        type=float,
        default=0.2,
        help="residual scaling the weights were trained with (default: 0.2, the published model)",
    )
    convert.set_defaults(func=_cmd_convert_weights)

    info = sub.add_parser("info", help="print versions and time one generator forward pass")
    info.add_argument("--model", help="checkpoint to load (default: a fresh 12-block generator)")
    info.add_argument("--blocks", type=int, default=12, help="residual blocks of a fresh generator")
    info.add_argument("--window", type=int, default=32, help="base-grid window size")
    info.set_defaults(func=_cmd_info)

    demo = sub.add_parser("make-demo-data", help="(re)generate the embedded demo region's files")
    demo.add_argument("directory", nargs="?", help="where to write (default: the shipped demo)")
    demo.set_defaults(func=_cmd_make_demo_data)

    plot = sub.add_parser("plot-inputs", help="hillshaded quick-look PNG of a region's inputs")
    plot.add_argument("--catalog", default="demo", help="catalog name or YAML path (default: demo)")
    plot.add_argument("--bbox", help="xmin,ymin,xmax,ymax in EPSG:3031 metres")
    plot.add_argument("--data-dir", help="folder of downloaded files (real catalogs)")
    plot.add_argument("--truth", action="store_true", help="also show the catalog's 250 m truth")
    plot.add_argument("--output", default="inputs.png", help="PNG to write")
    plot.set_defaults(func=_cmd_plot_inputs)

    sr = sub.add_parser(
        "superresolve",
        help="super-resolve a region to a 250 m bed (GeoTIFF/COG or Zarr)",
        description="Open a catalog's inputs lazily, run the DeepBedMap generator over "
        "overlapping chunks and write the 250 m bed.",
    )
    sr.add_argument("--catalog", default="demo", help="catalog name or YAML path (default: demo)")
    sr.add_argument("--bbox", help="xmin,ymin,xmax,ymax in EPSG:3031 metres (default: all)")
    sr.add_argument("--model", help="checkpoint or Chainer .npz (default: bundled demo model)")
    sr.add_argument("--chunks", type=int, default=256, help="base-grid chunk size (default 256)")
    sr.add_argument("--halo", type=int, help="base px of context per window (default: measured)")
    sr.add_argument("--window", type=int, help="largest window core in base px")
    sr.add_argument("--batch-size", type=int, help="windows per network call")
    sr.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    sr.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    sr.add_argument("--data-dir", help="folder of downloaded files (real catalogs)")
    sr.add_argument(
        "--output",
        action="append",
        required=True,
        help="output .tif (COG) or .zarr (resumable); repeat for several",
    )
    sr.add_argument("--cluster", choices=["local", "cuda"], help="start a local dask cluster")
    sr.add_argument("--scheduler", help="address of a running dask scheduler (tcp://...)")
    sr.add_argument("--figure", help="also write a comparison PNG (inputs, bicubic, result)")
    sr.add_argument("--truth", action="store_true", help="show the catalog's truth in the figure")
    sr.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    sr.set_defaults(func=_cmd_superresolve)

    from xdeepbedmap.cli_training import add_training_commands

    add_training_commands(sub)
    return parser


def _glue_bbox(argv: list[str]) -> list[str]:
    """Let ``--bbox -2000000,...`` through: argparse takes a leading ``-`` for an option."""
    glued: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--bbox":
            value = next(args, None)
            glued.append(arg if value is None else f"--bbox={value}")
        else:
            glued.append(arg)
    return glued


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line interface and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(_glue_bbox(sys.argv[1:] if argv is None else list(argv)))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI turns every failure into one line
        if os.environ.get("XDEEPBEDMAP_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
