"""Refer to generators by small specs; load each one once per worker process.

Dask tasks carry a :class:`ModelSpec` (a path and a digest, a few hundred
bytes), never the network itself; :func:`load_model` turns a spec into a
generator, cached per process, device and dtype, so every worker loads the
weights once. A spec also names the precision the network runs in
(``precision``: ``"float32"``, ``"channels_last"``, ``"mixed-bfloat16"``,
``"mixed-float16"``); :func:`load_model` wraps the float32 generator in a
:class:`~xdeepbedmap.model.precision.FastGenerator` for the fast forms.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import warnings
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from xdeepbedmap.model import Generator, load_chainer_weights, load_checkpoint
from xdeepbedmap.model.checkpoint import model_digest, read_checkpoint_metadata, save_checkpoint
from xdeepbedmap.model.precision import FastGenerator

#: ``ModelSpec.precision`` -> (FastGenerator form, half type); float32 runs the generator itself.
PRECISION_FORMS: dict[str, tuple[str, torch.dtype | None]] = {
    "channels_last": ("channels_last", None),
    "mixed-bfloat16": ("mixed", torch.bfloat16),
    "mixed-float16": ("mixed", torch.float16),
}

__all__ = [
    "BUNDLED_MODEL",
    "PRECISION_FORMS",
    "DemoModelOnRealDataWarning",
    "ModelSpec",
    "check_model_for_data",
    "load_model",
    "resolve_device",
    "resolve_model",
]

#: The demo model trained on synthetic regions (see docs/training.md).
BUNDLED_MODEL = Path(__file__).parent / "data" / "demo_model.safetensors"

_CACHE: dict[tuple[ModelSpec, str, str], Generator | FastGenerator] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelSpec:
    """Where a generator's weights are and how to read them.

    Attributes
    ----------
    path : str
        A checkpoint (``.safetensors``) or Chainer weights file (``.npz``).
    kind : str
        ``"checkpoint"`` or ``"chainer"``.
    digest : str
        SHA-256 of the weights: the cache key, so a changed file is reloaded.
    residual_scaling : float
        For Chainer files, which do not record it.
    hyperparameters_json : str
        The generator's hyperparameters as recorded with the weights (JSON,
        so the spec stays hashable); filled by :func:`resolve_model`. Derived
        from the weights, so not part of the spec's identity (the cache key).
    precision : str
        How the network runs: ``"float32"`` (the generator itself), or a key
        of :data:`PRECISION_FORMS`. Part of the identity: each precision is
        its own cached model and its own dask tasks.
    instance : str
        For a generator handed in as a Python object: its class and object id.
        Part of the identity, so this process runs that object (and what is
        derived from it), never another one with the same weights, and the
        two get their own dask tasks. Empty for files. Other processes read
        the saved weights into a plain :class:`Generator`.
    """

    path: str
    kind: str
    digest: str
    residual_scaling: float = 0.2
    hyperparameters_json: str = field(default="", compare=False)
    precision: str = "float32"
    instance: str = ""

    def __post_init__(self) -> None:
        if self.precision != "float32" and self.precision not in PRECISION_FORMS:
            raise ValueError(
                f"ModelSpec.precision must be 'float32' or one of {sorted(PRECISION_FORMS)}, "
                f"got {self.precision!r}"
            )

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters recorded with the weights (``{}`` until resolved)."""
        return json.loads(self.hyperparameters_json) if self.hyperparameters_json else {}


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def resolve_model(
    model: Generator | str | PathLike[str] | ModelSpec | None, residual_scaling: float = 0.2
) -> ModelSpec:
    """Turn what a user passes as ``model`` into a :class:`ModelSpec`.

    Parameters
    ----------
    model : Generator, path, ModelSpec or None
        ``None`` is the bundled demo model; a path ending in ``.npz`` is read
        as Chainer weights, any other path as an xdeepbedmap checkpoint. An
        in-memory generator is saved once to a temporary checkpoint named by
        its digest, so that worker processes can load it too.
    residual_scaling : float
        Residual scaling of Chainer weights.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a checkpoint or Chainer weights file (checked now,
        before any task runs).
    """
    if isinstance(model, ModelSpec):
        return model if model.hyperparameters_json else _with_hyperparameters(model)
    if isinstance(model, Generator):
        return _register(model)
    if model is None:
        if not BUNDLED_MODEL.exists():
            raise FileNotFoundError(
                f"no bundled demo model at {BUNDLED_MODEL}; "
                "pass model= a checkpoint or Chainer .npz file"
            )
        model = BUNDLED_MODEL
    path = Path(model).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix == ".npz":
        load_chainer_weights(path, residual_scaling)  # validate now, fail before the graph runs
        return ModelSpec(
            str(path.resolve()),
            "chainer",
            _file_digest(path),
            residual_scaling,
            _chainer_json(residual_scaling),
        )
    # verify the whole file now (digest, architecture, finite weights), so a bad
    # model fails before any output is created, not in the first task
    loaded = load_checkpoint(path)
    metadata = read_checkpoint_metadata(path)
    spec = ModelSpec(
        str(path.resolve()), "checkpoint", metadata["sha256"], 0.2, _checkpoint_json(metadata)
    )
    with _LOCK:  # this process need not read it again
        _CACHE.setdefault((spec, "cpu", "torch.float32"), loaded)
    return spec


def _register(model: Generator) -> ModelSpec:
    """Save an in-memory generator once and cache it as it is (device, dtype) in this process."""
    # named by the format-2 digest (hyperparameters and float32 weights), so a
    # file left by another model or an older format is never picked up
    digest = model_digest(model, torch.float32)
    path = Path(tempfile.gettempdir()) / "xdeepbedmap-models" / f"{digest}.safetensors"
    if not path.exists():
        save_checkpoint(model, path, note="in-memory model handed to superresolve")
    # the file's digest, not the model's: a float64 or float16 model is stored
    # (and loaded back by other processes) as float32
    metadata = read_checkpoint_metadata(path)
    # the object's own identity: the cache holds it, so its id is not reused
    instance = f"{type(model).__module__}.{type(model).__qualname__}@{id(model):x}"
    spec = ModelSpec(
        str(path), "checkpoint", metadata["sha256"], 0.2, _checkpoint_json(metadata),
        instance=instance,
    )  # fmt: skip
    # under the key of where the model actually is: a model on CUDA, or in
    # float64, must not be handed to tasks that asked for CPU float32
    first = next(model.parameters(), None)
    device, dtype = (first.device, first.dtype) if first is not None else ("cpu", torch.float32)
    with _LOCK:  # this process already has it
        _CACHE.setdefault((spec, str(device), str(dtype)), model)
    return spec


def _with_hyperparameters(spec: ModelSpec) -> ModelSpec:
    """``spec`` with the hyperparameters of its weights file filled in."""
    if spec.kind == "chainer":
        return replace(spec, hyperparameters_json=_chainer_json(spec.residual_scaling))
    return replace(spec, hyperparameters_json=_checkpoint_json(read_checkpoint_metadata(spec.path)))


def _checkpoint_json(metadata: dict[str, Any]) -> str:
    """The hyperparameters a checkpoint records (its header holds them as sorted JSON too)."""
    return json.dumps(metadata["hyperparameters"], sort_keys=True)


def _chainer_json(residual_scaling: float) -> str:
    """Chainer weights record no hyperparameters: only the scaling the caller gave."""
    return json.dumps({"residual_scaling": residual_scaling})


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return device


def load_model(
    spec: ModelSpec, device: torch.device, dtype: torch.dtype
) -> Generator | FastGenerator:
    """The network for ``spec`` on ``device``, loaded once per process.

    ``dtype`` is the type of the network's inputs and weights for
    ``spec.precision == "float32"``; the fast forms take and return float32,
    so they need ``dtype=torch.float32``.
    """
    if spec.precision != "float32" and dtype != torch.float32:
        raise ValueError(f"precision {spec.precision!r} takes float32 inputs; got dtype {dtype}")
    key = (spec, str(device), str(dtype))
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        exact = replace(spec, precision="float32")
        base = _CACHE.get((exact, "cpu", "torch.float32"))
        if base is None:
            base = _read(exact)
            _CACHE[(exact, "cpu", "torch.float32")] = base
        if spec.precision != "float32":
            form, half = PRECISION_FORMS[spec.precision]
            model: Generator | FastGenerator = FastGenerator(base, form, device, half_dtype=half)
        elif key[1:] == ("cpu", "torch.float32"):
            model = base
        else:
            model = _copy_to(base, device, dtype)
        _CACHE[key] = model
        return model


def _read(spec: ModelSpec) -> Generator:
    """The float32 CPU generator of ``spec``'s file, checked against its digest."""
    if spec.kind == "chainer":
        base = load_chainer_weights(spec.path, spec.residual_scaling)
    else:
        base = load_checkpoint(spec.path)
    # load_checkpoint verified the file against its header's digest
    if spec.kind == "checkpoint" and read_checkpoint_metadata(spec.path)["sha256"] != spec.digest:
        raise ValueError(f"{spec.path}: weights changed since the computation was set up")
    return base.eval()


def _copy_to(model: Generator, device: torch.device, dtype: torch.dtype) -> Generator:
    clone = Generator(**model.hyperparameters)
    clone.load_state_dict(model.state_dict())
    return clone.to(device=device, dtype=dtype).eval()


def cache_size() -> int:
    """Number of (model and precision, device, dtype) entries loaded in this process."""
    return len(_CACHE)


class DemoModelOnRealDataWarning(UserWarning):
    """The bundled demo model (synthetic training data) was used on real products."""


#: Output attribute recording that the demo model ran on real data.
DEMO_MODEL_NOTE = (
    "bundled demo model, trained on synthetic regions only, applied to real products: "
    "not a DeepBedMap bed; convert the published weights (docs/model.md) and pass them as model"
)


def check_model_for_data(model: object, ds: Any) -> dict[str, str]:
    """Warn when the bundled demo model is about to run on a real catalog's inputs.

    Call it where ``model=None`` is resolved; merge what it returns into the
    output's attributes.

    Parameters
    ----------
    model : object
        What the user passed as ``model`` (``None`` means the bundled demo model).
    ds : xarray.Dataset
        The inputs; ``ds.attrs["catalog_kind"] == "real"`` marks real products
        (set by :func:`xdeepbedmap.open_inputs` from the catalog's metadata).

    Returns
    -------
    dict
        ``{"model_warning": ...}`` when the demo model meets real data, else ``{}``.
    """
    demo = model is None or (
        isinstance(model, (str, PathLike)) and Path(model).resolve() == BUNDLED_MODEL.resolve()
    )
    if not demo or ds.attrs.get("catalog_kind") != "real":
        return {}
    warnings.warn(
        f"{ds.attrs.get('catalog', 'this catalog')}: {DEMO_MODEL_NOTE}",
        DemoModelOnRealDataWarning,
        stacklevel=2,
    )
    return {"model_warning": DEMO_MODEL_NOTE}
