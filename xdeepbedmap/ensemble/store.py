"""An ensemble of generators on disk: member checkpoints and one ``ensemble.json``.

Layout of an ensemble folder::

    my_ensemble/
        ensemble.json          # written last: its presence means complete
        member_00.safetensors
        member_01.safetensors
        ...

``ensemble.json`` records the format version, each member's file name and
checkpoint digest (``sha256`` of the checkpoint header, as
:func:`xdeepbedmap.model.checkpoint.read_checkpoint_metadata` reports it), how
each member was trained (``seed``, free-form ``training``), the calibration of
the spread (:class:`Calibration`, or ``null`` before it is fitted) and free
metadata. A member whose file is missing or whose digest differs from the
manifest is refused before anything is computed: an ensemble never silently
mixes members of two trainings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.distance_blend import DistanceBlend
from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.model.checkpoint import read_checkpoint_metadata
from xdeepbedmap.model_store import ModelSpec, resolve_model

__all__ = [
    "BUNDLED_ENSEMBLE",
    "ENSEMBLE_FORMAT",
    "MANIFEST",
    "Calibration",
    "Ensemble",
    "EnsembleError",
    "member_name",
    "read_ensemble",
    "set_calibration",
    "set_distance_blend",
    "write_ensemble",
]

#: Version of ``ensemble.json``; readers refuse other versions.
ENSEMBLE_FORMAT = 1
#: The manifest's file name inside an ensemble folder.
MANIFEST = "ensemble.json"
#: The demo ensemble trained on synthetic regions (docs/ensemble.md).
BUNDLED_ENSEMBLE = Path(__file__).resolve().parent.parent / "data" / "demo_ensemble"


class EnsembleError(XDeepBedMapError, ValueError):
    """An ensemble folder or file list that is incomplete or inconsistent."""


@dataclass(frozen=True)
class Calibration:
    """How the members' spread maps to an error estimate.

    ``bed_std = sqrt(floor**2 + (std_scale * spread)**2 + (relief_scale * relief)**2)``
    with ``spread`` the members' ddof=1 standard deviation and ``relief`` the
    local relief of their mean (:mod:`xdeepbedmap.ensemble.spread_model`).
    ``floor = relief_scale = 0`` (the defaults, and what manifests written
    before they existed hold) is ``bed_std = std_scale * spread``.

    Attributes
    ----------
    std_scale : float
        Factor on the members' spread, fitted on held-out data.
    fitted_on : str
        What the held-out data was (regions, tiles) and the fitting rule, for the record.
    n_pixels : int
        Truth pixels the factors were fitted on.
    floor : float
        Standard deviation (m) every pixel has whatever the spread.
    relief_scale : float
        Factor on the local relief of the ensemble mean.
    blended : bool
        Fitted on the mean blended with the bicubic bed by distance to the
        survey picks (:mod:`xdeepbedmap.distance_blend`), so it holds only
        for output made the same way.
    """

    std_scale: float
    fitted_on: str
    n_pixels: int
    floor: float = 0.0
    relief_scale: float = 0.0
    blended: bool = False

    def __post_init__(self) -> None:
        if not self.std_scale > 0:
            raise EnsembleError(f"Calibration.std_scale must be > 0, got {self.std_scale}")
        for name in ("floor", "relief_scale"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise EnsembleError(f"Calibration.{name} must be finite and >= 0, got {value}")

    @property
    def formula(self) -> str:
        """The calibrated standard deviation as a formula with the fitted numbers."""
        if not (self.floor or self.relief_scale):
            return f"{self.std_scale:.4g} * spread"
        return (
            f"sqrt({self.floor:.4g}**2 + ({self.std_scale:.4g} * spread)**2 + "
            f"({self.relief_scale:.4g} * relief)**2)"
        )


@dataclass(frozen=True)
class Ensemble:
    """Members (as :class:`ModelSpec`) and the calibration of their spread.

    Attributes
    ----------
    members : tuple of ModelSpec
        One spec per member, in manifest order.
    calibration : Calibration or None
        ``None`` when not fitted (or for a bare list of checkpoints): the
        spread is then reported uncalibrated (scale 1).
    source : str
        The folder or files it was read from.
    metadata_json : str
        Free metadata from the manifest (JSON, so the ensemble stays hashable).
    blend : DistanceBlend or None
        The weight of the members' mean residual by distance to the survey
        picks, fitted for these members (``xdeepbedmap fit-blend``), if any.
    """

    members: tuple[ModelSpec, ...]
    calibration: Calibration | None = None
    source: str = ""
    metadata_json: str = field(default="{}", compare=False)
    blend: DistanceBlend | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """The manifest's free metadata."""
        return json.loads(self.metadata_json)

    @property
    def std_scale(self) -> float:
        """The calibration factor, or 1.0 when uncalibrated."""
        return 1.0 if self.calibration is None else self.calibration.std_scale

    @property
    def digest(self) -> str:
        """SHA-256 of the members' digests in order: what a blend fitted for them records."""
        joined = ",".join(spec.digest for spec in self.members)
        return hashlib.sha256(joined.encode()).hexdigest()


def member_name(index: int) -> str:
    """File name of member ``index`` inside an ensemble folder."""
    return f"member_{index:02d}.safetensors"


def read_ensemble(source: str | PathLike[str] | Sequence[str | PathLike[str]]) -> Ensemble:
    """Open an ensemble folder, or treat a list of checkpoints as an uncalibrated ensemble.

    Raises
    ------
    EnsembleError
        No manifest in the folder, an unknown format version, a member file
        missing, or a member whose digest differs from the manifest's.
    FileNotFoundError
        A listed checkpoint does not exist.
    """
    if isinstance(source, (str, PathLike)) and Path(source).is_dir():
        return _read_folder(Path(source))
    files = [source] if isinstance(source, (str, PathLike)) else list(source)
    if not files:
        raise EnsembleError("an ensemble needs at least one member; got an empty list")
    members = tuple(resolve_model(f) for f in files)
    return Ensemble(members, None, ", ".join(str(f) for f in files))


def _read_folder(folder: Path) -> Ensemble:
    manifest = folder / MANIFEST
    if not manifest.exists():
        raise EnsembleError(
            f"{folder}: no {MANIFEST}, so not a complete ensemble (an interrupted "
            "`xdeepbedmap train --members` resumes when run again)"
        )
    record = json.loads(manifest.read_text())
    if record.get("format") != ENSEMBLE_FORMAT:
        raise EnsembleError(
            f"{manifest}: format {record.get('format')!r}, expected {ENSEMBLE_FORMAT}"
        )
    members = []
    for entry in record["members"]:
        path = folder / entry["file"]
        if not path.exists():
            raise EnsembleError(f"{folder}: member {entry['file']} listed in {MANIFEST} is missing")
        found = read_checkpoint_metadata(path)["sha256"]
        if found != entry["sha256"]:
            raise EnsembleError(
                f"{path}: digest {found[:12]}..., expected {entry['sha256'][:12]}... "
                f"from {MANIFEST} (the file was replaced after the ensemble was written)"
            )
        members.append(resolve_model(path))
    calibration = record.get("calibration")
    blend = record.get("distance_blend")
    return Ensemble(
        tuple(members),
        Calibration(**calibration) if calibration else None,
        str(folder),
        json.dumps(record.get("metadata", {}), sort_keys=True),
        DistanceBlend.from_dict(blend) if blend else None,
    )


def write_ensemble(
    folder: str | PathLike[str],
    members: Sequence[dict[str, Any]],
    *,
    calibration: Calibration | None = None,
    metadata: dict[str, Any] | None = None,
    blend: DistanceBlend | None = None,
) -> Path:
    """Write (or rewrite) ``ensemble.json`` for member checkpoints already in ``folder``.

    Parameters
    ----------
    folder : path
        The ensemble folder; member files must already be in it.
    members : sequence of dict
        Per member: ``file`` (name inside ``folder``), and optionally ``seed``
        and ``training`` (JSON-serialisable). The digest is read from the file.
    calibration : Calibration, optional
        The fitted spread factor.
    metadata : dict, optional
        Free, JSON-serialisable metadata (world, seeds, commands...).
    blend : DistanceBlend, optional
        The members' distance blend.

    Returns
    -------
    pathlib.Path
        The manifest. It is replaced atomically, so a reader sees the old or
        the new one, never a mixture.
    """
    folder = Path(folder)
    entries = []
    for member in members:
        path = folder / member["file"]
        if not path.exists():
            raise EnsembleError(f"{folder}: member file {member['file']} does not exist")
        entry = dict(member)
        entry["sha256"] = read_checkpoint_metadata(path)["sha256"]
        entries.append(entry)
    if not entries:
        raise EnsembleError("an ensemble needs at least one member; got none")
    record = {
        "format": ENSEMBLE_FORMAT,
        "members": entries,
        "calibration": asdict(calibration) if calibration else None,
        "metadata": metadata or {},
    }
    if blend is not None:
        record["distance_blend"] = blend.to_dict()
    with atomic_path(folder / MANIFEST, overwrite=True) as staged:
        staged.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return folder / MANIFEST


def _rewrite(folder: Path, calibration: Calibration | None, blend: DistanceBlend | None) -> Path:
    """The manifest again with another calibration and blend; members, seeds and metadata kept."""
    record = json.loads((folder / MANIFEST).read_text())
    members = [
        {key: value for key, value in entry.items() if key != "sha256"}
        for entry in record["members"]
    ]
    return write_ensemble(
        folder, members, calibration=calibration, metadata=record.get("metadata", {}), blend=blend
    )


def set_calibration(folder: str | PathLike[str], calibration: Calibration) -> Path:
    """Replace the calibration recorded in a complete ensemble folder.

    The members are checked against the manifest first (:func:`read_ensemble`),
    and kept as they are, with their seeds, training records, metadata and
    distance blend; the manifest is replaced atomically.
    """
    folder = Path(folder)
    ensemble = read_ensemble(folder)  # complete, and every member is the one recorded
    if calibration.blended and ensemble.blend is None:
        raise EnsembleError(
            f"{folder}: the calibration was fitted on blended output but the ensemble has no "
            "distance blend; set the blend first (xdeepbedmap fit-blend)"
        )
    return _rewrite(folder, calibration, ensemble.blend)


def set_distance_blend(folder: str | PathLike[str], blend: DistanceBlend) -> Path:
    """Record the members' distance blend in a complete ensemble folder.

    A calibration fitted on blended output was fitted for the previous blend,
    so it is dropped (refit it with ``xdeepbedmap calibrate``); one fitted on
    the unblended mean is kept, as it still holds for unblended output.
    """
    folder = Path(folder)
    calibration = read_ensemble(folder).calibration
    if calibration is not None and calibration.blended:
        calibration = None
    return _rewrite(folder, calibration, blend)
