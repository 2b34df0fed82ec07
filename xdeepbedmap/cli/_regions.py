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
    # held-out regions first: bad seeds are refused before the training tiles (or their cache)
    held_out = _validation_regions(args) if getattr(args, "validation_synthetic", None) else None
    layout = TileLayout(stride=args.stride, min_coverage=args.min_coverage)
    # runs sharing one --tiles cache: one builds it, the others wait and reuse it
    with output_lock(args.tiles, wait=True) if args.tiles else contextlib.nullcontext():
        tiles = build_tiles(
            _as_trained(args, regions_from_args(args, train_on=True)),
            store=args.tiles,
            layout=layout,
            progress=True,
        )
    require_tiles(tiles, 2)  # says how much of each region the truth covers
    if held_out is None:
        train_idx, val_idx = split_tiles(tiles.sizes["tile"], args.validation_fraction, args.seed)
    else:
        tiles, train_idx, val_idx = _append_held_out(tiles, build_tiles(held_out, layout=layout))
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


def _as_trained(
    args: argparse.Namespace, regions: list[tuple[xr.Dataset, xr.DataArray]]
) -> list[tuple[xr.Dataset, xr.DataArray]]:
    """The regions as the network sees them: blind conditioning for a bed-only model."""
    if not args.blind_conditioning:
        return regions
    from xdeepbedmap.conditioning import blind

    return [(blind(inputs), truth) for inputs, truth in regions]


def _validation_regions(args: argparse.Namespace) -> list[tuple[xr.Dataset, xr.DataArray]]:
    """The held-out regions of ``--validation-synthetic``, checked to be held out.

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
    # training_regions refuses the demo region's seed
    regions = training_regions(seeds, parse_shape(args.synthetic_shape), world=args.synthetic_world)
    return _as_trained(args, regions)


def _append_held_out(tiles: xr.Dataset, held_out: xr.Dataset) -> tuple[Any, Any, Any]:
    """``tiles`` then ``held_out``, region ids apart; indices of the former, of the latter."""
    require_tiles(held_out, 1)
    n_train, n_regions = tiles.sizes["tile"], int(tiles["region"].max()) + 1
    held_out = held_out.assign(region=held_out["region"] + n_regions)
    combined = xr.concat([tiles, held_out], dim="tile", combine_attrs="drop_conflicts")
    return combined, np.arange(n_train), np.arange(n_train, combined.sizes["tile"])
