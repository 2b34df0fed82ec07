"""Commands that use a model: superresolve, info, convert-weights, plot-inputs, make-demo-data."""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any

import dask
import torch
import xarray as xr
from dask.diagnostics import ProgressBar

from xdeepbedmap._version import __version__
from xdeepbedmap.atomic import partial_path
from xdeepbedmap.baselines import bicubic
from xdeepbedmap.blend_regions import blend_model_bed
from xdeepbedmap.catalog import open_inputs, open_truth, write_demo_data
from xdeepbedmap.cli._args import (
    add_bed_source_option,
    at_least,
    ensemble_option,
    parse_bbox,
    refuse_existing,
)
from xdeepbedmap.cli.survey_blend import add_survey_options, survey_from_args
from xdeepbedmap.ensemble import Ensemble, superresolve_ensemble
from xdeepbedmap.inference import DTYPES, superresolve
from xdeepbedmap.io import check_outputs, open_layers, write_outputs
from xdeepbedmap.model import Generator, load_chainer_weights, load_checkpoint, save_checkpoint
from xdeepbedmap.model.timing import time_forward
from xdeepbedmap.plot import plot_comparison, plot_inputs
from xdeepbedmap.region import crop_to_region

__all__ = ["add_commands"]


def _cmd_convert_weights(args: argparse.Namespace) -> int:
    source = Path(args.input)
    if not source.exists():
        raise FileNotFoundError(f"Chainer weights file not found: {source}")
    refuse_existing([args.output], args.overwrite)
    model = load_chainer_weights(source, residual_scaling=args.residual_scaling)
    out = save_checkpoint(model, args.output, source=source.name, converted_from="chainer save_npz")
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"wrote {out}: {model.num_residual_blocks} residual blocks, "
        f"residual scaling {model.residual_scaling}, {n_params:,} parameters"
    )
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    model = load_checkpoint(args.model) if args.model else Generator(args.blocks)
    timing = time_forward(model, args.window)
    n = timing.window
    print(f"xdeepbedmap {__version__}, torch {torch.__version__}")
    print(
        f"generator: {model.hyperparameters}, {sum(p.numel() for p in model.parameters()):,} params"
    )
    print(
        f"{n} x {n} base window -> {timing.output_shape} output px in {timing.seconds:.3f} s "
        f"({timing.base_px_per_s:,.0f} base px/s, {timing.threads} threads)"
    )
    return 0


def _cmd_make_demo_data(args: argparse.Namespace) -> int:
    for role, path in write_demo_data(args.directory).items():
        print(f"{role:>12}: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def _cmd_plot_inputs(args: argparse.Namespace) -> int:
    ds = open_inputs(args.catalog, region=parse_bbox(args.bbox), data_dir=args.data_dir, margin=0)
    truth = open_truth(args.catalog, data_dir=args.data_dir) if args.truth else None
    plot_inputs(ds, truth=truth, path=args.output)
    print(f"wrote {args.output}")
    return 0


def _connect(args: argparse.Namespace) -> Any:
    """The dask client ``--cluster``/``--scheduler`` ask for, or ``None`` (local threads)."""
    if not (args.cluster or args.scheduler):
        return None
    from xdeepbedmap.cluster import connect

    client = connect(args.cluster or "local", args.scheduler)
    print(f"dask cluster: {client.dashboard_link}")
    return client


def _disconnect(client: Any, started_here: bool) -> None:
    cluster = client.cluster
    client.close()
    if cluster is not None and started_here:
        cluster.close()


def _cmd_superresolve(args: argparse.Namespace) -> int:
    # everything that can fail on bad input fails here, before any output is written
    refuse_existing(args.output, args.overwrite)
    outputs = check_outputs(args.output, overwrite=args.overwrite)
    if args.figure and Path(args.figure).suffix.lower() != ".png":
        raise ValueError(f"--figure {args.figure}: expected a .png path")
    ensemble = _ensemble_from_args(args)  # a bad ensemble fails here, before any output
    ds = open_inputs(
        args.catalog,
        region=parse_bbox(args.bbox),
        chunks=args.chunks,
        data_dir=args.data_dir,
        bed_source=args.bed_source,
    )
    picks, blend = survey_from_args(args, ds.rio.crs, ensemble)
    options = dict(halo=args.halo, window=args.window, batch_size=args.batch_size)
    options.update(device=args.device, dtype=args.dtype, quality=args.quality)
    result: xr.DataArray | xr.Dataset
    if ensemble is not None:
        result = superresolve_ensemble(
            ds, ensemble, ice_mask=args.ice_mask, survey=picks, **options
        )
    else:
        result = superresolve(ds, args.model, ice_mask=args.ice_mask, **options)
        if picks is not None:
            result = blend_model_bed(result, ds, picks, blend)
    bed = result["bed"] if isinstance(result, xr.Dataset) else result
    # the result is cropped to --bbox (open_inputs read a margin of true data around it)
    ny, nx = bed.sizes["y"] // 4, bed.sizes["x"] // 4
    n_chunks = len(bed.chunks[0]) * len(bed.chunks[1])
    print(
        f"super-resolving {ny} x {nx} base px ({4 * ny} x {4 * nx} output px) from "
        f"catalog {args.catalog} with {bed.attrs['model']}, "
        f"{n_chunks} chunks, halo {bed.attrs['halo_base_px']}"
    )
    for out in outputs:
        if out.suffix.lower() == ".zarr" and partial_path(out).exists() and not args.restart:
            print(f"resuming the interrupted write of {out}")
    client = _connect(args)
    local = client is None
    start = time.perf_counter()
    with (
        dask.config.set(scheduler="threads") if local else contextlib.nullcontext(),
        ProgressBar(minimum=1.0, dt=0.5) if local else contextlib.nullcontext(),
    ):
        written = write_outputs(
            result, outputs, overwrite=args.overwrite, inputs=ds, restart=args.restart
        )
    elapsed = time.perf_counter() - start
    if args.figure:
        truth = None
        if args.truth:
            truth = open_truth(args.catalog, data_dir=args.data_dir)
            truth = truth.sel(x=bed.x, y=bed.y, method="nearest", tolerance=1.0)
        layers = open_layers(written[0])
        title = "DeepBedMap ensemble mean" if ensemble is not None else "DeepBedMap"
        beds = {"bicubic": crop_to_region(bicubic(ds), ds), title: layers["bed"]}
        std = layers["bed_std"] if ensemble is not None else None
        plot_comparison(crop_to_region(ds, ds), beds, truth, args.figure, uncertainty=std)
        written.append(Path(args.figure))
    print(
        f"done in {elapsed:.1f} s: {ny * nx / elapsed:,.0f} base px/s "
        f"({16 * ny * nx / elapsed:,.0f} output px/s)"
    )
    for path in written:
        print(f"  wrote {path}")
    if client is not None:
        _disconnect(client, started_here=not args.scheduler)
    return 0


def _ensemble_from_args(args: argparse.Namespace) -> Ensemble | None:
    """The ``--ensemble`` folder or checkpoint files, read and checked now, or ``None``."""
    if not args.ensemble:
        return None
    if args.model:
        raise ValueError("give --model or --ensemble, not both")
    return ensemble_option(args.ensemble)


def _add_superresolve(sub: Any) -> None:
    sr = sub.add_parser(
        "superresolve",
        help="super-resolve a region to a 250 m bed (GeoTIFF/COG or Zarr)",
        description="Open a catalog's inputs lazily, run the DeepBedMap generator over "
        "overlapping chunks and write the 250 m bed.",
    )
    sr.add_argument("--catalog", default="demo", help="catalog name or YAML path (default: demo)")
    sr.add_argument("--bbox", help="xmin,ymin,xmax,ymax in EPSG:3031 metres (default: all)")
    sr.add_argument("--model", help="checkpoint or Chainer .npz (default: bundled demo model)")
    sr.add_argument(
        "--ensemble",
        action="append",
        help="ensemble folder, member checkpoints (repeat), or 'bundled' (the demo "
        "ensemble): writes bed and bed_std (Zarr: two variables; GeoTIFF: bands 1 and 2)",
    )
    sr.add_argument(
        "--chunks", type=at_least(1), default=256, help="base-grid chunk size (default 256)"
    )
    sr.add_argument(
        "--halo", type=at_least(0), help="base px of context per window (default: measured)"
    )
    sr.add_argument("--window", type=at_least(1), help="largest window core in base px")
    sr.add_argument("--batch-size", type=at_least(1), help="windows per network call")
    sr.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    sr.add_argument(
        "--dtype",
        default="float32",
        choices=list(DTYPES),
        help="network precision (default float32; mixed: half-precision convolutions "
        "keeping the metres, see docs/precision.md; auto: mixed where measured accurate)",
    )
    sr.add_argument("--data-dir", help="folder of downloaded files (real catalogs)")
    add_bed_source_option(sr)
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
    sr.add_argument(
        "--restart",
        action="store_true",
        help="discard an interrupted Zarr write instead of resuming it",
    )
    sr.add_argument(
        "--quality",
        action="store_true",
        help="also write the filled_fraction quality layer beside each output (<name>_quality)",
    )
    sr.add_argument(
        "--ice-mask",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mask the output where the inputs' ice_mask < 0.5 (default: when there is one)",
    )
    add_survey_options(sr)
    sr.set_defaults(func=_cmd_superresolve)


def add_commands(sub: Any) -> None:
    """Register superresolve, info, convert-weights, plot-inputs and make-demo-data."""
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
        type=at_least(0.0, float, strict=True),
        default=0.2,
        help="residual scaling the weights were trained with (default: 0.2, the published model)",
    )
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    convert.set_defaults(func=_cmd_convert_weights)

    info = sub.add_parser("info", help="print versions and time one generator forward pass")
    info.add_argument("--model", help="checkpoint to load (default: a fresh 12-block generator)")
    info.add_argument(
        "--blocks", type=at_least(1), default=12, help="residual blocks of a fresh generator"
    )
    info.add_argument("--window", type=at_least(3), default=32, help="base-grid window size (>= 3)")
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

    _add_superresolve(sub)
