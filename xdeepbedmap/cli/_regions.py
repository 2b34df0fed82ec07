"""The regions a training or evaluation command works on, from its arguments."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.catalog import open_inputs, open_truth
from xdeepbedmap.cli._args import parse_bbox, parse_seeds, parse_shape
from xdeepbedmap.io.lock import output_lock
from xdeepbedmap.synthetic import WORLDS, make_region, training_regions
from xdeepbedmap.training.regions import load_regions, require_tiles
from xdeepbedmap.training.tiles import TileLayout, build_tiles, split_tiles

__all__ = ["regions_from_args", "training_tiles"]


def regions_from_args(
    args: argparse.Namespace, train_on: bool
) -> list[tuple[xr.Dataset, xr.DataArray]]:
    """The (inputs, truth) pairs a command works on: synthetic seeds or a catalog region."""
    if args.regions:
        return load_regions(args.regions)
    if args.synthetic:
        seeds, shape = parse_seeds(args.synthetic), parse_shape(args.synthetic_shape)
        if train_on:
            return training_regions(seeds, shape, world=args.synthetic_world)
        world = WORLDS[args.synthetic_world]
        return [make_region(shape, seed=seed, **world) for seed in seeds]
    inputs = open_inputs(
        args.catalog,
        region=parse_bbox(args.bbox),
        data_dir=args.data_dir,
        bed_source=args.bed_source,
    )
    if args.truth:
        import rioxarray

        truth = rioxarray.open_rasterio(args.truth, masked=True, chunks={"band": 1})
        return [(inputs, truth.squeeze("band", drop=True))]
    return [(inputs, open_truth(args.catalog, data_dir=args.data_dir))]


def training_tiles(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The tiles of ``train``'s regions, their train/validation split and a record of the data."""
    regions = regions_from_args(args, train_on=True)
    if args.blind_conditioning:
        from xdeepbedmap.conditioning import blind

        regions = [(blind(inputs), truth) for inputs, truth in regions]
    # runs sharing one --tiles cache: one builds it, the others wait and reuse it
    with output_lock(args.tiles, wait=True) if args.tiles else contextlib.nullcontext():
        tiles = build_tiles(
            regions,
            store=args.tiles,
            layout=TileLayout(stride=args.stride, min_coverage=args.min_coverage),
            progress=True,
        )
    require_tiles(tiles, 2)  # says how much of each region the truth covers
    if getattr(args, "validation_synthetic", None):
        tiles, train_idx, val_idx = _with_validation_regions(args, tiles)
    else:
        train_idx, val_idx = split_tiles(tiles.sizes["tile"], args.validation_fraction, args.seed)
    print(f"{tiles.sizes['tile']} tiles: {len(train_idx)} for training, {len(val_idx)} validation")
    source = (
        {
            "synthetic_seeds": args.synthetic,
            "synthetic_shape": args.synthetic_shape,
            "synthetic_world": args.synthetic_world,
        }
        if args.synthetic
        else {"catalog": str(args.catalog), "bbox": args.bbox}
    )
    if args.regions:
        source = {"regions": str(args.regions), "min_coverage": args.min_coverage}
    source["blind_conditioning"] = bool(args.blind_conditioning)
    if getattr(args, "validation_synthetic", None):
        source["validation_seeds"] = args.validation_synthetic
    return tiles, train_idx, val_idx, source


def _with_validation_regions(args: argparse.Namespace, tiles: xr.Dataset) -> tuple[Any, Any, Any]:
    """Append the tiles of held-out validation regions; train on all of ``tiles``.

    Validation tiles cut between training tiles of the same regions reward
    memorising each region's errors (docs/synthetic.md); tiles of other
    regions of the same world measure what a model does on a region it has
    not seen, so the best epoch is chosen by that.
    """
    if not args.synthetic:
        raise ValueError(
            "--validation-synthetic needs --synthetic: validation regions of the same world"
        )
    seeds = parse_seeds(args.validation_synthetic)
    shared = sorted(set(seeds) & set(parse_seeds(args.synthetic)))
    if shared:
        raise ValueError(
            f"--validation-synthetic: seeds {shared} are also training seeds (--synthetic); "
            "validation regions must be held out"
        )
    regions = training_regions(seeds, parse_shape(args.synthetic_shape), world=args.synthetic_world)
    if args.blind_conditioning:
        from xdeepbedmap.conditioning import blind

        regions = [(blind(inputs), truth) for inputs, truth in regions]
    layout = TileLayout(stride=args.stride, min_coverage=args.min_coverage)
    held_out = build_tiles(regions, layout=layout)
    require_tiles(held_out, 1)
    n_train, n_regions = tiles.sizes["tile"], int(tiles["region"].max()) + 1
    held_out = held_out.assign(region=held_out["region"] + n_regions)
    combined = xr.concat([tiles, held_out], dim="tile", combine_attrs="drop_conflicts")
    total = combined.sizes["tile"]
    return combined, np.arange(n_train), np.arange(n_train, total)
