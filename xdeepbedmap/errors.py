"""The package's exceptions share one base class, :class:`XDeepBedMapError`.

Catch ``XDeepBedMapError`` to handle everything xdeepbedmap refuses on
purpose (bad grids, bad model files, incomplete outputs, diverged training).
Each subclass also derives from the built-in exception it raised before
(``ValueError`` or ``RuntimeError``), so existing ``except ValueError`` code
keeps working.
"""

from __future__ import annotations

__all__ = ["XDeepBedMapError"]


class XDeepBedMapError(Exception):
    """Base class of every exception xdeepbedmap raises on purpose."""
