"""Figures for survey evaluation (matplotlib imported only when drawing)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import xarray as xr

__all__ = ["plot_transect", "save_transect"]


def plot_transect(profile: xr.Dataset, title: str | None = None) -> Any:
    """Draw elevation and roughness along a :func:`~xdeepbedmap.survey.transect`.

    Returns the matplotlib Figure (two panels sharing the distance axis, km).
    """
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5), constrained_layout=True)
    km = profile["distance"].values / 1000.0
    for name in profile["grid"].values:
        style = {"color": "black", "lw": 1.5} if name == "truth" else {"lw": 1.0}
        top.plot(km, profile["elevation"].sel(grid=name), label=str(name), **style)
        bottom.plot(km, profile["roughness"].sel(grid=name), label=str(name), **style)
    top.set_ylabel("bed elevation (m)")
    window = profile["roughness"].attrs.get("window_px", 5)
    bottom.set_ylabel(f"roughness (m, {window}x{window} px std)")
    bottom.set_xlabel("distance along transect (km)")
    top.legend(loc="best", fontsize="small")
    if title:
        top.set_title(title)
    return fig


def save_transect(profile: xr.Dataset, path: str | PathLike[str], title: str | None = None) -> Path:
    """Draw :func:`plot_transect` to a PNG (written atomically) and close the figure."""
    import matplotlib.pyplot as plt

    from xdeepbedmap.atomic import atomic_path

    fig = plot_transect(profile, title)
    path = Path(path)
    try:
        with atomic_path(path, overwrite=True) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return path
