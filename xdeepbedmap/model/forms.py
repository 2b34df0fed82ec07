"""Which numerical form each precision takes on each device (see docs/precision.md).

The same precision gives slightly different numbers in different forms (the
Winograd trunk, the phase-form upsampling), so :class:`FastGenerator
<xdeepbedmap.model.precision.FastGenerator>` takes its defaults from here and
outputs record :func:`compute_form`, which a resumed write compares.
"""

from __future__ import annotations

import torch

__all__ = ["compute_form", "default_forms"]


def default_forms(precision: str, device: torch.device) -> tuple[bool, bool]:
    """``(fewer_products, phase_upsample)`` that :class:`FastGenerator` uses by default."""
    cpu = torch.device(device).type == "cpu"
    fewer = precision == "channels_last" and cpu
    return fewer, fewer or (precision.startswith("mixed") and cpu)


def compute_form(precision: str, device: str | torch.device) -> str:
    """How ``precision`` runs on ``device``, for output attributes and resume identity.

    The same precision gives slightly different numbers in different forms
    (e.g. the Winograd trunk), so a resumed write must not mix them.
    """
    fewer, phase = default_forms(precision, torch.device(device))
    parts = [precision] + ["Winograd trunk"] * fewer + ["phase-form upsampling"] * phase
    return ", ".join(parts)
