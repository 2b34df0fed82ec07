"""Commands around radar survey picks: grid-survey, and ``evaluate --points``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import xarray as xr

from xdeepbedmap.cli._args import parse_bbox, parse_seeds, parse_shape

__all__ = [
    "add_commands",
    "add_point_options",
    "evaluate_at_points",
    "parse_line",
    "read_point_file",
]

_LAYOUTS = ("auto", "cresis", "bedmap", "xyz")
_METHODS = ("linear", "cubic", "kneighbors", "spline")


def parse_line(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """``"x0,y0,x1,y1"`` (EPSG:3031 m) -> ``((x0, y0), (x1, y1))`` (``--transect``)."""
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError as err:
        raise ValueError(f"--transect must be x0,y0,x1,y1 in metres, got {text!r}") from err
    return (x0, y0), (x1, y1)


def add_point_options(parser: argparse.ArgumentParser) -> None:
    """How survey files are read: layout, columns, CRS, quality."""
    parser.add_argument("--layout", choices=_LAYOUTS, default="auto", help="column schema")
    parser.add_argument("--bed-column", help="bed elevation column (default: by layout)")
    parser.add_argument("--x-column", help="x column (xyz layout)")
    parser.add_argument("--y-column", help="y column (xyz layout)")
    parser.add_argument("--crs", help="CRS of x/y columns (xyz layout; default lon/lat)")
    parser.add_argument(
        "--max-quality", type=int, default=2, help="drop picks with a worse quality flag (2)"
    )


def reader_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~xdeepbedmap.survey.iter_points` keywords of :func:`add_point_options`."""
    return {
        "layout": args.layout,
        "bed_column": args.bed_column,
        "x_column": args.x_column,
        "y_column": args.y_column,
        "crs": args.crs,
        "max_quality": args.max_quality,
    }


def read_point_file(path: str, args: argparse.Namespace) -> Any:
    """Read a survey file with the options of :func:`add_point_options` (a DataFrame)."""
    from xdeepbedmap.survey import read_points

    return read_points(path, **reader_options(args))


def _point_region(args: argparse.Namespace) -> tuple[xr.Dataset, xr.DataArray | None]:
    """Inputs of the region judged at points, and a truth grid when one is at hand."""
    from xdeepbedmap.catalog import open_inputs
    from xdeepbedmap.synthetic import make_region
    from xdeepbedmap.training.regions import open_truth_grid

    if args.synthetic:
        seeds = parse_seeds(args.synthetic)
        if len(seeds) != 1:
            raise ValueError("evaluate takes one region (one --synthetic seed)")
        return make_region(parse_shape(args.synthetic_shape), seed=seeds[0])
    inputs = open_inputs(args.catalog, region=parse_bbox(args.bbox), data_dir=args.data_dir)
    return inputs, (open_truth_grid(args.truth).compute() if args.truth else None)


def evaluate_at_points(args: argparse.Namespace) -> int:
    """``evaluate --points``: the model and baselines at survey picks (and a transect)."""
    from xdeepbedmap.survey import evaluate_points, point_beds, transect
    from xdeepbedmap.survey.plot import save_transect

    line = parse_line(args.transect) if args.transect else None
    if args.figure and line is None:
        raise ValueError("--figure with --points draws the transect: give --transect x0,y0,x1,y1")
    inputs, truth = _point_region(args)
    points = read_point_file(args.points, args)
    training = read_point_file(args.training_points, args) if args.training_points else None
    baselines = ("bicubic", "survey") if training is not None else ("bicubic",)
    beds = point_beds(inputs, args.model, baselines, training, halo=args.halo, device=args.device)
    table = evaluate_points(None, points, model=False, baselines=(), grids=beds)
    print(f"at {len(points):,} survey points of {args.points} (bed - pick, m):")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    if args.json:
        Path(args.json).write_text(json.dumps(table.to_dict(orient="index"), indent=2) + "\n")
        print(f"  wrote {args.json}")
    if line:
        grids = {**({"truth": truth} if truth is not None else {}), **beds}
        profile = transect(grids, *line)
        if args.figure:
            print(f"  wrote {save_transect(profile, args.figure, title=args.points)}")
    return 0


def _geoid_options(args: argparse.Namespace) -> dict[str, Any]:
    directions = [d for d, on in (("ellipsoid", args.to_ellipsoid), ("geoid", args.to_geoid)) if on]
    if args.geoid is None:
        if directions:
            raise ValueError("--to-ellipsoid/--to-geoid need --geoid FILE (a geoid-height raster)")
        return {}
    if len(directions) != 1:
        raise ValueError("--geoid needs exactly one of --to-ellipsoid or --to-geoid")
    import rioxarray

    geoid = rioxarray.open_rasterio(args.geoid, masked=True).squeeze("band", drop=True)
    return {"geoid": geoid, "to": directions[0], "geoid_name": args.geoid_name}


def _cmd_grid_survey(args: argparse.Namespace) -> int:
    from xdeepbedmap.survey import grid_survey_files
    from xdeepbedmap.survey.pipeline import truth_outputs

    bbox = parse_bbox(args.bbox)
    outputs = truth_outputs(args.output, args.overwrite)  # fail before reading anything
    stats: dict[str, int] = {}
    truth = grid_survey_files(
        args.files,
        bbox,  # type: ignore[arg-type]
        args.output,
        mask_radius=args.mask_radius,
        method=args.method,
        overwrite=args.overwrite,
        stats=stats,
        vertical_datum=args.vertical_datum,
        **_geoid_options(args),
        **reader_options(args),
    )
    kept = float(truth["bed"].notnull().mean())
    ny, nx = truth["bed"].shape
    print(
        f"read {stats['rows_read']:,} rows from {len(args.files)} file(s): {stats['kept']:,} picks "
        f"(dropped {stats['dropped_nodata']:,} without a bed pick, "
        f"{stats['dropped_quality']:,} of poor quality)"
    )
    print(
        f"gridded {truth.attrs['n_points']:,} picks near the box to {ny} x {nx} cells of 250 m: "
        f"{int((truth['count'] > 0).sum()):,} cells with picks, {100 * kept:.1f}% within "
        f"{args.mask_radius:g} m of a pick ({truth.attrs['method']}, "
        f"datum {truth.attrs['vertical_datum']})"
    )
    for path in outputs:
        print(f"  wrote {path}")
    return 0


def _add_grid_survey(sub: Any) -> None:
    gs = sub.add_parser(
        "grid-survey",
        help="grid radar survey picks to a 250 m truth (bed, count, distance)",
        description="Read survey files (CReSIS, Bedmap, x/y/z, Parquet), drop no-data and "
        "poor-quality picks, optionally move heights between geoid and ellipsoid, then block "
        "median per 250 m cell, interpolate between lines and mask cells far from any pick. "
        "Writes truth.tif (+ truth_count.tif, truth_distance.tif) or one truth.zarr.",
    )
    gs.add_argument("files", nargs="+", metavar="FILE", help="survey files")
    gs.add_argument("--bbox", required=True, help="xmin,ymin,xmax,ymax in EPSG:3031 metres")
    gs.add_argument("--output", required=True, help="truth .tif/.tiff or .zarr to write")
    gs.add_argument(
        "--mask-radius", type=float, default=1500.0, help="m; farther cells stay NaN (1500)"
    )
    gs.add_argument("--method", choices=_METHODS, default="linear", help="interpolator (linear)")
    add_point_options(gs)
    gs.add_argument("--vertical-datum", help="datum of the files' heights (default by layout)")
    gs.add_argument("--geoid", help="geoid-height raster (m above the WGS 84 ellipsoid)")
    gs.add_argument("--geoid-name", default="gl04c geoid", help="name of that geoid")
    gs.add_argument("--to-ellipsoid", action="store_true", help="geoid heights -> ellipsoid")
    gs.add_argument("--to-geoid", action="store_true", help="ellipsoid heights -> geoid")
    gs.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    gs.set_defaults(func=_cmd_grid_survey)


def add_commands(sub: Any) -> None:
    """Register grid-survey."""
    _add_grid_survey(sub)
