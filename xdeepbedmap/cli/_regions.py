"""The regions a training or evaluation command works on, from its arguments."""

from __future__ import annotations

import argparse

import xarray as xr

from xdeepbedmap.catalog import open_inputs, open_truth
from xdeepbedmap.cli._args import parse_bbox, parse_seeds, parse_shape
from xdeepbedmap.synthetic import WORLDS, make_region, training_regions
from xdeepbedmap.training.regions import load_regions

__all__ = ["regions_from_args"]


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
