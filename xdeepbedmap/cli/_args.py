"""Parsing helpers shared by the commands: text of an option -> Python value."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = [
    "add_region_options",
    "at_least",
    "fraction",
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
    """``"64x48"`` -> ``(64, 48)`` (``--synthetic-shape``); both sizes positive."""
    try:
        ny, nx = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise ValueError(f"--synthetic-shape must look like 64x64, got {text!r}") from err
    if ny < 1 or nx < 1:
        raise ValueError(f"--synthetic-shape must be positive sizes like 64x64, got {text!r}")
    return ny, nx


def at_least(minimum: float, kind: type = int, *, strict: bool = False) -> Callable[[str], Any]:
    """An argparse ``type``: a ``kind`` number >= ``minimum`` (> with ``strict``).

    Out-of-range values are refused when the command line is parsed, before
    any file is opened or written.
    """

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        ok = value > minimum if strict else value >= minimum  # both refuse NaN
        if not ok:
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {minimum}, got {text}"
            )
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def fraction(text: str) -> float:
    """An argparse ``type``: a float strictly between 0 and 1."""
    value = at_least(0.0, float, strict=True)(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be < 1, got {text}")
    return value


def _shape(text: str) -> str:
    """Check ``--synthetic-shape`` at parse time; the text is kept (recorded in metadata)."""
    try:
        parse_shape(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def glue_bbox(argv: Sequence[str]) -> list[str]:
    """Let ``--bbox -2000000,...`` through: argparse takes a leading ``-`` for an option.

    The same for ``--transect``, whose coordinates are negative as often.
    """
    glued: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("--bbox", "--transect"):
            value = next(args, None)
            glued.append(arg if value is None else f"{arg}={value}")
        else:
            glued.append(arg)
    return glued


def refuse_existing(paths: Sequence[str | PathLike[str]], overwrite: bool) -> None:
    """Fail before any work when an ``--output`` exists and ``--overwrite`` is not given."""
    for path in map(Path, paths):
        if path.exists() and not overwrite:
            raise FileExistsError(f"--output {path} exists; pass --overwrite to replace it")


def add_bed_source_option(parser: argparse.ArgumentParser) -> None:
    """``--bed-source``: which of the catalog's ``bed_sources`` gives the 1 km bed."""
    parser.add_argument(
        "--bed-source",
        help="bed product of the catalog's bed_sources: bedmap2 (default), bedmachine, bedmap3 "
        "(antarctica catalog); python: open_inputs(..., bed_source=...)",
    )


def add_region_options(parser: argparse.ArgumentParser, default_catalog: str | None) -> None:
    """Options choosing the region(s) a training command works on: seeds or a catalog."""
    parser.add_argument(
        "--synthetic", help="synthetic region seeds, e.g. 100-115 (instead of a catalog)"
    )
    parser.add_argument(
        "--synthetic-shape", default="64x64", type=_shape, help="base px per synthetic region"
    )
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
    parser.add_argument(
        "--regions", help="YAML list of regions {catalog, bbox, truth, data_dir} (many regions)"
    )
    parser.add_argument(
        "--min-coverage",
        type=float,
        default=1.0,
        help="valid truth fraction a tile needs (1.0: NaN-free; below 1 NaN truth is filled)",
    )
    add_bed_source_option(parser)
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")


#: What ``--ensemble`` accepts for the ensemble bundled with the package.
BUNDLED_ENSEMBLE_NAME = "bundled"


def ensemble_option(values: Sequence[str]) -> Any:
    """Read the ``--ensemble`` values: one folder, member checkpoints, or ``bundled``.

    ``bundled`` (when no file of that name exists) is the demo ensemble
    shipped with the package. The ensemble is read and checked now, before
    any output is created.
    """
    from xdeepbedmap.ensemble import resolve_ensemble

    if len(values) == 1 and values[0] == BUNDLED_ENSEMBLE_NAME and not Path(values[0]).exists():
        return resolve_ensemble(None)
    return resolve_ensemble(values[0] if len(values) == 1 else list(values))


def refuse_seen_regions(
    trained: dict[str, Any],
    seeds: Sequence[int],
    world: str,
    who: str,
    keys: Sequence[str] = ("synthetic_seeds",),
) -> None:
    """Refuse held-out ``--synthetic`` seeds or a world that the model's records say it saw.

    ``trained`` is a checkpoint's or ensemble's ``training_data`` record;
    ``keys`` its seed lists to check (``synthetic_seeds``, ``validation_seeds``).
    Fitting anything on regions a model trained on (or picked epochs with)
    would flatter it.
    """
    owners = f"{who}'" if who.endswith("s") else f"{who}'s"
    for key in keys:
        if trained.get(key):
            shared = sorted(set(parse_seeds(trained[key])) & set(seeds))
            if shared:
                raise ValueError(
                    f"--synthetic: seeds {shared[:5]} are among the {owners} {key} (the {who} "
                    f"trained on seeds {trained[key]}); use regions none of them saw"
                )
    if trained.get("synthetic_world", world) != world:
        raise ValueError(
            f"--synthetic-world {world}: the {who} trained on world {trained['synthetic_world']}"
        )
