"""Command line interface: ``xdeepbedmap <command> ...``.

Every command reports failures as one ``error: ...`` line on stderr and a
non-zero exit status, never as a traceback (set ``XDEEPBEDMAP_DEBUG=1`` to see
the traceback).
"""

from __future__ import annotations

import argparse
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line interface and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
