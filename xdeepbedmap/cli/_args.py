"""Parsing helpers shared by the commands: text of an option -> Python value."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

__all__ = [
    "add_region_options",
    "glue_bbox",
    "parse_bbox",
    "parse_seeds",
    "parse_shape",
    "refuse_existing",
]


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``"xmin,ymin,xmax,ymax"`` (metres) -> a 4-tuple of floats; ``None`` stays ``None``."""
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


def parse_seeds(text: str) -> list[int]:
    """``"100-103,110"`` -> ``[100, 101, 102, 103, 110]``."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:  # a range; a leading "-" is a negative seed
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError as err:
        raise ValueError(f"seeds must look like 100-115,120; got {text!r}") from err
    if not seeds:
        raise ValueError(f"no seed in {text!r}")
    return seeds


def parse_shape(text: str) -> tuple[int, int]:
    """``"64x48"`` -> ``(64, 48)`` (``--synthetic-shape``)."""
    try:
        ny, nx = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise ValueError(f"--synthetic-shape must look like 64x64, got {text!r}") from err
    return ny, nx


def glue_bbox(argv: Sequence[str]) -> list[str]:
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


def refuse_existing(paths: Sequence[str | PathLike[str]], overwrite: bool) -> None:
    """Fail before any work when an ``--output`` exists and ``--overwrite`` is not given."""
    for path in map(Path, paths):
        if path.exists() and not overwrite:
            raise FileExistsError(f"--output {path} exists; pass --overwrite to replace it")


def add_region_options(parser: argparse.ArgumentParser, default_catalog: str | None) -> None:
    """Options choosing the region(s) a training command works on: seeds or a catalog."""
    parser.add_argument(
        "--synthetic", help="synthetic region seeds, e.g. 100-115 (instead of a catalog)"
    )
    parser.add_argument("--synthetic-shape", default="64x64", help="base px per synthetic region")
    parser.add_argument(
        "--synthetic-world",
        default="v1",
        choices=("v1", "v2"),
        help="synthetic world: v1 (block-mean bed, default) or v2 (survey bed, slip physics)",
    )
    parser.add_argument("--catalog", default=default_catalog, help="catalog name or YAML path")
    parser.add_argument("--bbox", help="xmin,ymin,xmax,ymax in EPSG:3031 metres")
    parser.add_argument("--truth", help="250 m truth GeoTIFF (default: the catalog's truth)")
    parser.add_argument("--data-dir", help="folder of downloaded files (real catalogs)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
