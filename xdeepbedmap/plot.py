"""Every figure the package draws (matplotlib): beds, inputs, training and tuning curves.

matplotlib is imported only when a figure is drawn, and never configured:
a figure saved to a path is built without pyplot (no backend is selected,
nothing is left open); without a path it is a pyplot figure, shown by
``plt.show()`` or a notebook as usual.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    import optuna
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from xdeepbedmap.distance_blend import DistanceBlend

__all__ = [
    "hillshade",
    "plot_comparison",
    "plot_distance_blend",
    "plot_inputs",
    "plot_loss_curve",
    "plot_study",
]


def _figure(path: str | PathLike[str] | None, **kwargs: Any) -> Figure:
    """A pyplot figure for interactive use, or a detached one when it only goes to ``path``."""
    if path is None:
        from matplotlib import pyplot as plt

        return plt.figure(**kwargs)
    from matplotlib.figure import Figure

    return Figure(**kwargs)


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
    import matplotlib
    from matplotlib import colors

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
        cmap=matplotlib.colormaps[cmap],
        norm=colors.Normalize(vmin, vmax),
        blend_mode="soft",
        vert_exag=vert_exag,
        dx=dx,
        dy=dx,
    )
    rgb[~finite] = 1.0
    ax.imshow(rgb, extent=_extent_km(da), interpolation="nearest")
    mappable = matplotlib.cm.ScalarMappable(norm=colors.Normalize(vmin, vmax), cmap=cmap)
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
        A 250 m true bed to show beside the 1 km bed, with the same colour
        scale; cropped to the inputs' extent (e.g. a catalog's whole truth).
    path : str or path-like, optional
        Where to save the figure (PNG), if given.
    """
    panels = 5 if truth is not None else 4
    fig = _figure(path, figsize=(4.6 * panels, 4.2), layout="constrained")
    axes = fig.subplots(1, panels)
    bed = ds["bed"].compute()
    vmin, vmax = (float(np.nanpercentile(bed, p)) for p in (1, 99))
    if truth is not None:
        x, y = ds.x_surface.values[[0, -1]], ds.y_surface.values[[0, -1]]
        truth = truth.sel(x=slice(*x), y=slice(*y)).compute()
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
    uncertainty: xr.DataArray | None = None,
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
    uncertainty : xarray.DataArray, optional
        An ensemble's ``bed_std`` (m): one more panel, a colour map of it.
    """
    beds = {"bed, 1 km": ds["bed"].compute()}
    beds.update({f"{title}, 250 m": da.compute() for title, da in results.items()})
    if truth is not None:
        beds["true bed, 250 m"] = truth.compute()
    panels = len(beds) + 1 + (uncertainty is not None)
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig = _figure(path, figsize=(5.2 * cols, 4.6 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    values = np.concatenate([np.ravel(b.values) for b in beds.values()])
    vmin, vmax = (float(np.nanpercentile(values, p)) for p in (1, 99))
    hillshade(axes[0], ds["surface"].compute(), cmap="Blues_r", title="surface, 100 m")
    for ax, (title, bed) in zip(axes[1:], beds.items(), strict=False):
        hillshade(ax, bed, vmin=vmin, vmax=vmax, title=title)
    if uncertainty is not None:
        std_map(fig, axes[len(beds) + 1], uncertainty.compute(), "uncertainty (std), 250 m")
    for ax in axes[panels:]:
        ax.set_axis_off()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def std_map(fig: Figure, ax: Any, std: xr.DataArray, title: str) -> None:
    """A colour map of a standard deviation (m) and its colour bar (not a surface: no shading)."""
    vmax = float(np.nanpercentile(std.values, 99)) if np.isfinite(std.values).any() else 1.0
    image = ax.imshow(std.values, extent=_extent_km(std), cmap="magma", vmin=0, vmax=vmax)
    fig.colorbar(image, ax=ax, shrink=0.8, label="m")
    ax.set_title(title)
    ax.set_xlabel("x (km)")


def plot_loss_curve(history: list[dict[str, float]], path: str | PathLike[str]) -> Path:
    """Training loss and validation RMSE per epoch (rows of ``metrics.csv``), as a PNG."""
    epochs = [row["epoch"] for row in history]
    fig = _figure(path, figsize=(10, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, [row["generator_loss"] for row in history], label="generator")
    if "discriminator_loss" in history[0]:
        ax1.plot(epochs, [row["discriminator_loss"] for row in history], label="discriminator")
    ax1.set(xlabel="epoch", ylabel="loss", title="training loss", yscale="log")
    ax1.legend()
    ax2.plot(epochs, [row["val_rmse"] for row in history], color="C2")
    ax2.set(xlabel="epoch", ylabel="RMSE (m)", title="validation RMSE")
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_study(study: optuna.Study, path: str | PathLike[str]) -> Path:
    """Plot an Optuna study's optimisation history and every trial's learning curve to a PNG.

    Left: held-out RMSE per completed trial and the best so far (bicubic as a
    reference line). Right: validation RMSE per epoch, pruned trials dashed with crosses.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    fig = _figure(path, figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    numbers = [t.number for t in complete]
    values = [t.value for t in complete]
    ax1.plot(numbers, values, "o", label="trial")
    best = [min(values[: i + 1]) for i in range(len(values))]
    ax1.step(numbers, best, where="post", color="C3", label="best so far")
    bicubic = [t.user_attrs.get("bicubic_rmse") for t in complete]
    if bicubic and bicubic[0] is not None:
        ax1.axhline(bicubic[0], color="grey", ls="--", lw=1, label="bicubic")
    ax1.set(xlabel="trial", ylabel="held-out RMSE (m)", title="optimisation history")
    ax1.legend()
    for t in trials:
        if not t.intermediate_values:
            continue
        steps = sorted(t.intermediate_values)
        pruned = t.state == TrialState.PRUNED
        ax2.plot(steps, [t.intermediate_values[s] for s in steps], "x--" if pruned else "-", lw=1)
    ax2.set(xlabel="epoch", ylabel="validation RMSE (m)", yscale="log",
            title="learning curves (x--: pruned)")  # fmt: skip
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_distance_blend(
    blends: dict[str, DistanceBlend], path: str | PathLike[str], max_km: float = 25.0
) -> Path:
    """The weight of the network's residual against distance to the nearest pick, per blend."""
    fig = _figure(path, figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    d = np.linspace(0.0, max_km, 251)
    for index, (label, blend) in enumerate(blends.items()):
        ax.plot(d, blend.weight(d), color=f"C{index}", label=label)
        ax.plot(blend.knots_km, blend.weights, "o", color=f"C{index}", ms=4)
    ax.set(xlabel="distance to the nearest survey pick (km)", ylabel="weight of the residual w(d)",
           ylim=(-0.02, 1.05), xlim=(0, max_km),
           title="bed = bicubic + w(d) (network - bicubic)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110)
    return Path(path)
