"""Figures for survey evaluation (matplotlib imported only when drawing)."""

from __future__ import annotations

from typing import Any

import xarray as xr

__all__ = ["plot_transect"]


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
