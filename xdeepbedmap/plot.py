"""Quick-look figures (matplotlib): hillshaded beds and the four inputs."""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["hillshade", "plot_comparison", "plot_inputs"]


def _extent_km(da: xr.DataArray) -> tuple[float, float, float, float]:
    ydim, xdim = da.dims
    x = da[xdim].values / 1e3
    y = da[ydim].values / 1e3
    dx = (x[1] - x[0]) if x.size > 1 else 1.0
    dy = (y[0] - y[1]) if y.size > 1 else 1.0
    return (x[0] - dx / 2, x[-1] + dx / 2, y[-1] - dy / 2, y[0] + dy / 2)


def hillshade(
    ax: Axes,
    da: xr.DataArray,
    cmap: str = "gist_earth",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    vert_exag: float = 2.0,
) -> Axes:
    """Draw an elevation grid coloured by height and shaded by a NW light.

    NaN (no data) is left white. Axes are in kilometres of the grid's CRS.
    """
    from matplotlib import colors
    from matplotlib import pyplot as plt

    values = np.asarray(da.values, dtype=np.float64)
    finite = np.isfinite(values)
    if vmin is None:
        vmin = float(np.nanpercentile(values, 1)) if finite.any() else 0.0
    if vmax is None:
        vmax = float(np.nanpercentile(values, 99)) if finite.any() else 1.0
    ydim, xdim = da.dims
    dx = float(abs(da[xdim].values[1] - da[xdim].values[0])) if da.sizes[xdim] > 1 else 1.0
    light = colors.LightSource(azdeg=315, altdeg=45)
    filled = np.where(finite, values, np.nanmean(values) if finite.any() else 0.0)
    rgb = light.shade(
        filled,
        cmap=plt.get_cmap(cmap),
        norm=colors.Normalize(vmin, vmax),
        blend_mode="soft",
        vert_exag=vert_exag,
        dx=dx,
        dy=dx,
    )
    rgb[~finite] = 1.0
    ax.imshow(rgb, extent=_extent_km(da), interpolation="nearest")
    mappable = plt.cm.ScalarMappable(norm=colors.Normalize(vmin, vmax), cmap=cmap)
    ax.figure.colorbar(mappable, ax=ax, shrink=0.8, label=da.attrs.get("units", ""))
    ax.set_title(title if title is not None else str(da.name))
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    return ax


def plot_inputs(
    ds: xr.Dataset, truth: xr.DataArray | None = None, path: str | PathLike[str] | None = None
) -> Figure:
    """Quick-look of a region's inputs: bed and surface hillshades, speed, accumulation.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs.
    truth : xarray.DataArray, optional
        A 250 m true bed to show beside the 1 km bed, with the same colour scale.
    path : str or path-like, optional
        Where to save the figure (PNG), if given.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    panels = 5 if truth is not None else 4
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2), layout="constrained")
    bed = ds["bed"].compute()
    vmin, vmax = (float(np.nanpercentile(bed, p)) for p in (1, 99))
    if truth is not None:
        truth = truth.compute()
        vmin = min(vmin, float(np.nanpercentile(truth, 1)))
        vmax = max(vmax, float(np.nanpercentile(truth, 99)))
    hillshade(axes[0], bed, vmin=vmin, vmax=vmax, title="bed, 1 km")
    i = 1
    if truth is not None:
        hillshade(axes[1], truth, vmin=vmin, vmax=vmax, title="true bed, 250 m")
        i = 2
    hillshade(axes[i], ds["surface"].compute(), cmap="Blues_r", title="surface, 100 m")
    speed = np.hypot(ds["vx"], ds["vy"]).compute()
    ax = axes[i + 1]
    from matplotlib import colors

    image = ax.imshow(
        speed.values,
        extent=_extent_km(speed),
        norm=colors.LogNorm(1, max(10.0, float(speed.max()))),
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="m yr-1")
    ax.set_title("ice speed, 500 m")
    ax = axes[i + 2]
    image = ax.imshow(
        ds["accumulation"].values, extent=_extent_km(ds["accumulation"]), cmap="viridis"
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="kg m-2 yr-1")
    ax.set_title("accumulation, 1 km")
    for ax in axes[i + 1 :]:
        ax.set_xlabel("x (km)")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_comparison(
    ds: xr.Dataset,
    results: dict[str, xr.DataArray],
    truth: xr.DataArray | None = None,
    path: str | PathLike[str] | None = None,
) -> Figure:
    """Hillshades of the 1 km bed, the 100 m surface and 250 m results side by side.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs.
    results : dict of str to xarray.DataArray
        250 m beds to compare, by title (e.g. ``{"bicubic": ..., "DeepBedMap": ...}``).
    truth : xarray.DataArray, optional
        The true 250 m bed, when known.
    path : str or path-like, optional
        Where to save the figure (PNG).
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    beds = {"bed, 1 km": ds["bed"].compute()}
    beds.update({f"{title}, 250 m": da.compute() for title, da in results.items()})
    if truth is not None:
        beds["true bed, 250 m"] = truth.compute()
    panels = len(beds) + 1
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.6 * rows), layout="constrained")
    axes = np.atleast_1d(axes).ravel()
    values = np.concatenate([np.ravel(b.values) for b in beds.values()])
    vmin, vmax = (float(np.nanpercentile(values, p)) for p in (1, 99))
    hillshade(axes[0], ds["surface"].compute(), cmap="Blues_r", title="surface, 100 m")
    for ax, (title, bed) in zip(axes[1:], beds.items(), strict=False):
        hillshade(ax, bed, vmin=vmin, vmax=vmax, title=title)
    for ax in axes[panels:]:
        ax.set_axis_off()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
