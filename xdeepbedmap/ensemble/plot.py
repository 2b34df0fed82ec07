"""The ensemble evaluation figure: mean, spread, error and a reliability diagram."""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from xdeepbedmap.plot import _figure, hillshade, std_map

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_uncertainty"]


def plot_uncertainty(
    mean: xr.DataArray,
    std: xr.DataArray,
    truth: xr.DataArray,
    reliability: dict[str, list[float]],
    path: str | PathLike[str] | None = None,
) -> Figure:
    """Ensemble mean, its standard deviation and the absolute error side by side, and reliability.

    Parameters
    ----------
    mean, std, truth : xarray.DataArray
        The ensemble's ``bed`` and ``bed_std`` and the true bed, on one 250 m grid.
    reliability : dict
        ``nominal`` and ``observed`` coverage, as
        :func:`xdeepbedmap.ensemble.metrics.reliability` returns them.
    path : str or path-like, optional
        Where to save the figure (PNG).
    """
    mean, std, truth = (a.compute() for a in (mean, std, truth))
    error = abs(truth - mean).rename("absolute error")
    fig = _figure(path, figsize=(20, 4.6), layout="constrained")
    axes = fig.subplots(1, 4)
    hillshade(axes[0], mean, title="ensemble mean, 250 m")
    std_map(fig, axes[1], std, "ensemble std (uncertainty), 250 m")
    # one colour scale for spread and error: a calibrated std looks like the error map
    std_map(fig, axes[2], error, "|truth - mean|, 250 m")
    high = max(axes[1].images[0].get_clim()[1], axes[2].images[0].get_clim()[1])
    for ax in axes[1:3]:
        ax.images[0].set_clim(0, high)
    nominal = np.asarray(reliability["nominal"])
    ax = axes[3]
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="calibrated")
    ax.plot(nominal, reliability["observed"], marker="o", label="observed")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed coverage")
    ax.set_title("reliability (above the line: spread too wide)")
    ax.legend(loc="upper left")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
