"""Filling of whole arrays: nearest value (synthetic regions), pull-push (the gap fill's source).

Inference does not use the nearest fill: a per-block nearest fill depends on
the chunking, so the network's inputs are filled globally by
:mod:`xdeepbedmap.gapfill`, from a source smoothed by :func:`pull_push`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["RELAX_SWEEPS", "fill_nearest", "pull_push"]


def fill_nearest(values: np.ndarray) -> np.ndarray:
    """Replace no data (NaN, and +-inf) by the nearest valid value.

    Nearest-value filling keeps ocean out of land values: no extreme fill value
    (such as -5000 m) enters a convolution, and valid values are not dragged
    towards one. An array without a valid value becomes zeros.

    Parameters
    ----------
    values : numpy.ndarray
        Any shape and floating dtype.

    Returns
    -------
    numpy.ndarray
        ``values`` itself when it is all valid, else a filled array of the same
        dtype and shape.
    """
    invalid = ~np.isfinite(values)
    if not invalid.any():
        return values
    if invalid.all():
        return np.zeros_like(values)
    idx = ndimage.distance_transform_edt(invalid, return_distances=False, return_indices=True)
    return values[tuple(idx)]


#: Jacobi sweeps over the filled cells of every pyramid level. Pull-push alone
#: leaves steps where a gap meets data (a cell next to the data takes a coarse
#: level's value); relaxing towards the mean of the neighbours at each level
#: (a multigrid-style smoother) makes the fill meet the data continuously.
#: Bed within 2 km of a 24 km surface gap (benchmarks/gap_effect.py), max / RMS:
#: 0 sweeps 37.9 / 8.9 m, 4: 32.8 / 7.2 m, 16: 30.7 / 6.6 m, 32: 30.0 / 6.5 m;
#: each sweep costs about a quarter of a whole pull-push, so 4.
RELAX_SWEEPS = 4


def pull_push(
    mean: np.ndarray,
    weight: np.ndarray,
    origin: tuple[int, int] = (0, 0),
    sweeps: int = RELAX_SWEEPS,
) -> np.ndarray:
    """Fill cells with zero ``weight`` from coarser levels (pull), upsampled bilinearly (push).

    Cells with data keep their ``mean``; the filled cells of each level are
    then relaxed ``sweeps`` times towards the mean of their four neighbours.
    An array without any data becomes zeros.

    Parameters
    ----------
    mean, weight : numpy.ndarray
        2-D, same shape; ``weight`` 0 where there is no data.
    origin : tuple of int
        Global ``(row, column)`` index of ``mean[0, 0]``. Each level pairs
        cells on even global indices (level ``k`` cells start on multiples of
        ``2**k``), so the fill of a cell depends on where it is, not on where
        the array starts: two arrays cut from the same field at different
        places fill a gap well inside both alike.
    sweeps : int
        Jacobi sweeps per level over the filled cells.
    """
    has = weight > 0
    if has.all():
        return mean
    if not has.any():
        return np.zeros_like(mean)
    (ny, nx), (oy, ox) = mean.shape, (int(origin[0]), int(origin[1]))
    if all(n == 1 or (n, o) == (2, -1) for n, o in ((ny, oy), (nx, ox))):
        # cells either side of global index 0 at origin -1 pair into the same
        # two cells again (-1 // 2 == -1), forever: this level pairs from 0
        oy, ox = (0 if n == 2 else o for n, o in ((ny, oy), (nx, ox)))
    pad = ((oy % 2, (oy + ny) % 2), (ox % 2, (ox + nx) % 2))
    sums = np.pad(np.where(has, mean * weight, 0.0), pad)
    sums = sums.reshape(sums.shape[0] // 2, 2, sums.shape[1] // 2, 2)
    weights = np.pad(weight, pad).reshape(sums.shape)
    coarse_w = weights.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        coarse = sums.sum(axis=(1, 3)) / coarse_w
    coarse = pull_push(np.where(coarse_w > 0, coarse, 0.0), coarse_w, (oy // 2, ox // 2), sweeps)
    up = _upsample2(coarse)[pad[0][0] : pad[0][0] + ny, pad[1][0] : pad[1][0] + nx]
    return _relax(np.where(has, mean, up), ~has, sweeps)


def _relax(values: np.ndarray, free: np.ndarray, sweeps: int) -> np.ndarray:
    """``sweeps`` Jacobi steps of the ``free`` cells to their 4-neighbour mean (edge-padded).

    Done in place in one edge-padded copy, over the free cells' bounding box
    only (the rest never changes), with the additions in the order of the
    whole-array form ``0.25 * (up + down + left + right)``: the same values.
    """
    if sweeps == 0 or not free.any():
        return values
    rows, cols = np.flatnonzero(free.any(axis=1)), np.flatnonzero(free.any(axis=0))
    (r0, r1), (c0, c1) = (rows[0], rows[-1] + 1), (cols[0], cols[-1] + 1)
    p = np.pad(values, 1, mode="edge")
    inside = p[1 + r0 : 1 + r1, 1 + c0 : 1 + c1]  # the box, a view of p
    where = free[r0:r1, c0:c1]
    neighbours = np.empty_like(inside)
    for _ in range(sweeps):
        np.add(p[r0:r1, 1 + c0 : 1 + c1], p[2 + r0 : 2 + r1, 1 + c0 : 1 + c1], out=neighbours)
        neighbours += p[1 + r0 : 1 + r1, c0:c1]
        neighbours += p[1 + r0 : 1 + r1, 2 + c0 : 2 + c1]
        neighbours *= 0.25
        np.copyto(inside, neighbours, where=where)
        # the edge padding follows the cells it copies
        p[0], p[-1], p[:, 0], p[:, -1] = p[1], p[-2], p[:, 1], p[:, -2]
    return p[1:-1, 1:-1]


def _upsample2(values: np.ndarray) -> np.ndarray:
    """Bilinear 2x upsampling (cell-centre aligned, edges clamped).

    Each output is ``0.75 v + 0.25 neighbour`` (the neighbour clamped at the
    edges), with ``0.75 v`` computed once for both phases and written in place.
    """
    for axis in (0, 1):
        v = np.moveaxis(values, axis, 0)
        out = np.empty((2 * v.shape[0], *v.shape[1:]), dtype=v.dtype)
        centre = 0.75 * v
        even, odd = out[0::2], out[1::2]
        np.multiply(v[:-1], 0.25, out=even[1:])
        even[1:] += centre[1:]
        even[0] = centre[0] + 0.25 * v[0]
        np.multiply(v[1:], 0.25, out=odd[:-1])
        odd[:-1] += centre[:-1]
        odd[-1] = centre[-1] + 0.25 * v[-1]
        values = np.moveaxis(out, 0, axis)
    return values
