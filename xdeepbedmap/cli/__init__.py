"""Command line interface: ``xdeepbedmap <command> ...``.

Every command parses its arguments and calls the library (``docs/cli.md``
shows the equivalent Python beside each command). Failures are reported as
one ``error: ...`` line on stderr and a non-zero exit status, never as a
traceback (set ``XDEEPBEDMAP_DEBUG=1`` to see the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from xdeepbedmap.cli import blend, evaluate, inference, survey, training
from xdeepbedmap.cli._args import glue_bbox

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``xdeepbedmap`` command."""
    from xdeepbedmap._version import __version__

    parser = argparse.ArgumentParser(
        prog="xdeepbedmap", description="DeepBedMap super-resolution for xarray and dask."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    inference.add_commands(sub)
    training.add_commands(sub)
    evaluate.add_commands(sub)
    survey.add_commands(sub)
    blend.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line interface and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(glue_bbox(sys.argv[1:] if argv is None else list(argv)))
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
