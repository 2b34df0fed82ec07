"""A window's network inputs cut from a block and its neighbours' edges, filled where needed.

The fused path of chunked inference (:mod:`xdeepbedmap.block_graph`) hands
each block's task the raw (unfilled) block of every variable and the edges
of its eight neighbours, wide enough for the windows' context plus the gap
fill's reach. :func:`window_into` writes one window's filled values straight
into a batch buffer:

* a variable without no data in the block and its neighbours (known from
  the planning pass, :attr:`xdeepbedmap.gapfill_source.FillSource.complete`)
  is copied piece by piece from them (no overlap is ever assembled, nothing
  is filled or checked);
* otherwise the area the block's windows cover (clipped to the domain) is
  filled once (:func:`fill_area`) by :func:`xdeepbedmap.gapfill_block.filled`
  from the raw data within :data:`~xdeepbedmap.gapfill_block.EDGE_REACH` of
  it, and each window is copied from it. The fill of a pixel
  depends only on its position and the data within reach, so the values are
  those of the global, per-block fill of :func:`xdeepbedmap.gapfill.fill_inputs`,
  and only the area of the windows the network runs is filled (an ocean
  block's none);
* beyond the domain's edge the window is mirrored (``symmetric``, as
  ``dask.array.map_overlap``'s ``boundary="reflect"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xdeepbedmap.gapfill_block import filled

__all__ = ["FilledArea", "Pieces", "fill_area", "window_into"]

Span = tuple[int, int]


@dataclass(frozen=True)
class Pieces:
    """One variable's block and its neighbours' edges (``None`` beyond the domain).

    Coordinates are fine pixels relative to the block's first core pixel;
    ``start`` is that pixel in the domain and ``domain`` the domain's shape.
    ``complete``: the block and every neighbour are known to hold no data
    gap (the planning pass's extremes), so nothing needs filling or checking.
    """

    grid: list[list[np.ndarray | None]]
    start: tuple[int, int]
    domain: tuple[int, int]
    name: str
    factor: int
    complete: bool = False

    def edges(self, axis: int) -> list[int]:
        """Band edges along ``axis``: ``[-before, 0, size, size + after]``."""
        centre = self.grid[1][1]
        assert centre is not None
        pick = [self.grid[k][1] if axis == 0 else self.grid[1][k] for k in range(3)]
        before = 0 if pick[0] is None else pick[0].shape[axis]
        after = 0 if pick[2] is None else pick[2].shape[axis]
        size = centre.shape[axis]
        return [-before, 0, size, size + after]


def copy_rect(pieces: Pieces, rows: Span, cols: Span, dest: np.ndarray) -> None:
    """Copy ``rows x cols`` (inside the pieces' cover) into ``dest``, piece by piece."""
    row_edges, col_edges = pieces.edges(0), pieces.edges(1)
    for a in range(3):
        r0, r1 = max(rows[0], row_edges[a]), min(rows[1], row_edges[a + 1])
        if r0 >= r1:
            continue
        for b in range(3):
            c0, c1 = max(cols[0], col_edges[b]), min(cols[1], col_edges[b + 1])
            if c0 >= c1:
                continue
            piece = pieces.grid[a][b]
            assert piece is not None  # the cover includes every piece the rect touches
            src = piece[
                r0 - row_edges[a] : r1 - row_edges[a], c0 - col_edges[b] : c1 - col_edges[b]
            ]
            dest[r0 - rows[0] : r1 - rows[0], c0 - cols[0] : c1 - cols[0]] = src


def _clip(span: Span, start: int, size: int) -> Span:
    """``span`` (relative to ``start`` in a domain of ``size``) clipped to the domain."""
    return max(span[0], -start), min(span[1], size - start)


def _filled_rect(pieces: Pieces, rows: Span, cols: Span, reach: int, source) -> np.ndarray:
    """The filled values of ``rows x cols`` (inside the domain): raw data within reach, filled."""
    (y0, x0), (ny, nx) = pieces.start, pieces.domain
    ext_rows = _clip((rows[0] - reach, rows[1] + reach), y0, ny)
    ext_cols = _clip((cols[0] - reach, cols[1] + reach), x0, nx)
    centre = pieces.grid[1][1]
    assert centre is not None
    ext = np.empty((ext_rows[1] - ext_rows[0], ext_cols[1] - ext_cols[0]), dtype=centre.dtype)
    copy_rect(pieces, ext_rows, ext_cols, ext)
    core = (
        slice(rows[0] - ext_rows[0], rows[1] - ext_rows[0]),
        slice(cols[0] - ext_cols[0], cols[1] - ext_cols[0]),
    )
    origin = (y0 + ext_rows[0], x0 + ext_cols[0])
    return filled(ext, core, origin, source, pieces.name, pieces.factor, in_place=True)


@dataclass(frozen=True)
class FilledArea:
    """Filled values of ``rows x cols``: fine px relative to the block's core, in the domain."""

    rows: Span
    cols: Span
    values: np.ndarray


def fill_area(pieces: Pieces, rows: Span, cols: Span, source, reach: int) -> FilledArea:
    """Fill ``rows x cols`` (clipped to the domain) once, for every window inside it.

    Parameters
    ----------
    pieces : Pieces
        The variable's block and neighbours' edges (raw, with no data).
    rows, cols : tuple of int
        The area, fine pixels relative to the block's core.
    source : FillSource
        The gap fill's source (:func:`xdeepbedmap.gapfill.plan_fill`).
    reach : int
        The fill's reach in this variable's fine pixels.
    """
    (y0, x0), (ny, nx) = pieces.start, pieces.domain
    rows, cols = _clip(rows, y0, ny), _clip(cols, x0, nx)
    return FilledArea(rows, cols, _filled_rect(pieces, rows, cols, reach, source))


def window_into(
    pieces: Pieces, rows: Span, cols: Span, dest: np.ndarray, area: FilledArea | None
) -> None:
    """Write the filled inputs of ``rows x cols`` (may cross the domain's edge) into ``dest``.

    Parameters
    ----------
    pieces : Pieces
        The variable's block and neighbours' edges.
    rows, cols : tuple of int
        The window with its context, fine pixels relative to the block's core.
    dest : numpy.ndarray
        ``(rows, cols)``-shaped output (a batch buffer's channel).
    area : FilledArea or None
        The filled area holding the window (:func:`fill_area`); ``None``
        when ``pieces`` is complete (copied from the pieces as they are).
    """
    (y0, x0), (ny, nx) = pieces.start, pieces.domain
    inner_rows, inner_cols = _clip(rows, y0, ny), _clip(cols, x0, nx)
    top, left = inner_rows[0] - rows[0], inner_cols[0] - cols[0]
    inner = dest[
        top : top + inner_rows[1] - inner_rows[0], left : left + inner_cols[1] - inner_cols[0]
    ]
    if area is None:
        copy_rect(pieces, inner_rows, inner_cols, inner)
    else:
        r, c = inner_rows[0] - area.rows[0], inner_cols[0] - area.cols[0]
        inner[...] = area.values[r : r + inner.shape[0], c : c + inner.shape[1]]
    if inner.shape != dest.shape:  # beyond the domain: mirrored, as map_overlap's "reflect"
        _mirror(dest, (top, rows[1] - inner_rows[1]), (left, cols[1] - inner_cols[1]))


def _mirror(dest: np.ndarray, rows: Span, cols: Span) -> None:
    """Fill ``dest``'s outer ``rows`` and ``cols`` (before, after) by mirroring its inside.

    The same values as ``numpy.pad(inside, mode="symmetric")`` (the edge
    pixel repeated), in place: rows first, then columns (corners mirrored twice).
    """
    for axis, (before, after) in enumerate((rows, cols)):
        view = dest if axis == 0 else dest.T
        if before:
            view[:before] = view[before : 2 * before][::-1]
        if after:
            view[-after:] = view[-2 * after : -after][::-1]
