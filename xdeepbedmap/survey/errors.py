"""The survey package's exception: bad survey files, columns or parameters."""

from __future__ import annotations

from xdeepbedmap.errors import XDeepBedMapError

__all__ = ["SurveyError"]


class SurveyError(XDeepBedMapError, ValueError):
    """A survey file, column, datum or gridding parameter is not usable as given."""
