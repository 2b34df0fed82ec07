"""The per-block kernel of chunked super-resolution.

:func:`run_windows` runs a block's windows through the network, whoever cuts
them: the fused graph (:mod:`xdeepbedmap.block_graph`) cuts and fills them
from the raw block and its neighbours' edges; the general graph's
:func:`superresolve_block` receives one filled block of each input from
``dask.array.map_overlap``, with ``halo + 1`` base pixels of context on every
side (the extra pixel is eaten by the generator's 'valid' input block), and
returns the ``4 x`` super-resolved core of the block:

* the core is cut into windows of at most ``window`` base pixels
  (:func:`plan_windows`), each with the same context, and windows of one shape
  go through the network ``batch_size`` at a time; each window's context
  output is cropped;
* the inputs arrive already filled (:mod:`xdeepbedmap.gapfill`, once and
  globally, so no fill here depends on the block) and stacked per grid, the
  base grid's last channel being the mask of the pixels to output (the bed
  had data, and the cell is ice when an ice mask is applied);
* windows are cut as views and copied straight into batch buffers allocated
  once per block and window shape (pinned on CUDA, so host-to-device copies
  can be asynchronous);
* the output is NaN wherever the mask is false (its 4 x 4 sub-pixels);
  windows whose core it masks whole are not run (:func:`live_windows`), so
  a block whose mask core is all false skips the network;
* an ensemble (:func:`superresolve_block_members`) runs every member on each
  assembled batch, so the block is cut and copied once for all members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch

from xdeepbedmap.grids import OUTPUT_FACTOR, VARIABLES
from xdeepbedmap.model_store import ModelSpec, load_model
from xdeepbedmap.output_checks import check_batch_output
from xdeepbedmap.windows import GENERATOR_INPUTS

__all__ = [
    "live_windows",
    "plan_windows",
    "run_windows",
    "superresolve_block",
    "superresolve_block_members",
]

#: Fine pixels per base pixel of each generator input, from the nesting contract.
_FACTORS = {name: VARIABLES[stacked[0]][2] for name, stacked in GENERATOR_INPUTS.items()}

#: Window cores by shape ``(wy, wx)``: the core coordinates ``(r0, c0)`` of each.
WindowPlan = dict[tuple[int, int], list[tuple[int, int]]]


def _windows(size: int, window: int) -> Iterator[tuple[int, int]]:
    """Split ``range(size)`` into near-equal pieces of at most ``window``."""
    count = -(-size // window)
    edges = np.linspace(0, size, count + 1).round().astype(int)
    yield from zip(edges[:-1], edges[1:], strict=True)


def plan_windows(ny: int, nx: int, window: int) -> WindowPlan:
    """The windows of an ``ny x nx`` core, grouped by shape (a batch holds one shape)."""
    plan: WindowPlan = {}
    for r0, r1 in _windows(ny, window):
        for c0, c1 in _windows(nx, window):
            plan.setdefault((int(r1 - r0), int(c1 - c0)), []).append((int(r0), int(c0)))
    return plan


def _batch_buffers(
    shape: tuple[int, int], depth: int, size: int, pin: bool
) -> dict[str, torch.Tensor]:
    """Empty float32 batch tensors of the generator's inputs for windows of ``shape``."""
    wy, wx = shape
    n, m = wy + 2 * depth, wx + 2 * depth
    shapes = {
        name: (size, len(stacked), _FACTORS[name] * n, _FACTORS[name] * m)
        for name, stacked in GENERATOR_INPUTS.items()
    }
    return {
        name: torch.empty(shape, dtype=torch.float32, pin_memory=pin)
        for name, shape in shapes.items()
    }


#: Writes one window's inputs into slot ``k`` of the batch buffers:
#: ``cut(k, r0, c0, buffers)`` for the window whose core starts at ``(r0, c0)``
#: (base px, core coordinates), context included.
Cut = Callable[[int, int, int, Mapping[str, torch.Tensor]], None]


def _cut_overlapped(arrays: Mapping[str, np.ndarray], n: int, m: int) -> Cut:
    """A :data:`Cut` from overlapped blocks: window ``(r0, c0)`` spans ``[r0, r0 + n)`` of them.

    A window whose core starts at ``(r0, c0)`` in core coordinates starts at
    ``(r0 + depth, c0 + depth)`` in block coordinates, so with its context it
    spans ``[r0, r0 + wy + 2 depth)`` of the block: views, copied once into
    the buffers.
    """

    def cut(k: int, r0: int, c0: int, buffers: Mapping[str, torch.Tensor]) -> None:
        for name, factor in _FACTORS.items():
            view = arrays[name][:, factor * r0 : factor * (r0 + n), factor * c0 : factor * (c0 + m)]
            np.copyto(buffers[name][k].numpy(), view)

    return cut


def _to_device(
    buffers: Mapping[str, torch.Tensor], count: int, device: torch.device, dtype: torch.dtype
) -> list[torch.Tensor]:
    """The first ``count`` windows of the buffers on ``device`` (asynchronously when pinned)."""
    pinned = buffers["x"].is_pinned()
    return [
        buffers[name][:count].to(device=device, dtype=dtype, non_blocking=pinned)
        for name in GENERATOR_INPUTS
    ]


def live_windows(keep: np.ndarray, window: int) -> WindowPlan:
    """:func:`plan_windows` of ``keep``'s shape without the windows it masks whole.

    A window whose core has no pixel to output would only be masked: it is
    neither cut, filled nor run.
    """
    plan = {}
    for (wy, wx), origins in plan_windows(*keep.shape, window).items():
        live = [(r0, c0) for r0, c0 in origins if keep[r0 : r0 + wy, c0 : c0 + wx].any()]
        if live:
            plan[wy, wx] = live
    return plan


def run_windows(
    cut_for: Callable[[int, int], Cut],
    keep: np.ndarray,
    *,
    specs: tuple[ModelSpec, ...],
    halo: int,
    window: int,
    batch_size: int,
    device: torch.device,
    compute_dtype: torch.dtype,
    pin_memory: bool | None = None,
) -> np.ndarray:
    """Run every live window of a block's core through each member; NaN where not ``keep``.

    ``cut_for(n, m)`` gives the :data:`Cut` of windows of ``n x m`` base px
    (context included); ``keep`` is the core's output mask. Windows of one
    shape go through the network ``batch_size`` at a time from buffers
    allocated once per shape (pinned on CUDA); each window's context output
    is cropped. Returns ``(len(specs), 4 ny, 4 nx)`` float32.
    """
    ny, nx = keep.shape
    out = np.full((len(specs), OUTPUT_FACTOR * ny, OUTPUT_FACTOR * nx), np.nan, dtype=np.float32)
    plan = live_windows(keep, window)
    if not plan:
        return out  # nothing to predict: no network call
    models = [load_model(spec, device, compute_dtype) for spec in specs]
    pin = device.type == "cuda" if pin_memory is None else pin_memory
    depth, crop = halo + 1, OUTPUT_FACTOR * halo
    f = OUTPUT_FACTOR
    with torch.inference_mode():
        for (wy, wx), origins in plan.items():
            buffers = _batch_buffers((wy, wx), depth, min(batch_size, len(origins)), pin)
            cut = cut_for(wy + 2 * depth, wx + 2 * depth)
            for start in range(0, len(origins), batch_size):
                batch = origins[start : start + batch_size]
                for k, (r0, c0) in enumerate(batch):
                    cut(k, r0, c0, buffers)
                inputs = _to_device(buffers, len(batch), device, compute_dtype)
                for k, model in enumerate(models):
                    y = model(*inputs).float().cpu().numpy()[:, 0]
                    check_batch_output(y, batch, specs[k].path, specs[k].precision)
                    for tile, (r0, c0) in zip(y, batch, strict=True):
                        core = tile[crop : crop + f * wy, crop : crop + f * wx]
                        out[k, f * r0 : f * (r0 + wy), f * c0 : f * (c0 + wx)] = core
    if not keep.all():
        mask = np.repeat(np.repeat(~keep, OUTPUT_FACTOR, axis=0), OUTPUT_FACTOR, axis=1)
        out[:, mask] = np.nan
    return out


def superresolve_block(
    base: np.ndarray,
    surface: np.ndarray,
    velocity: np.ndarray,
    *,
    spec: ModelSpec,
    halo: int,
    window: int,
    batch_size: int,
    device: torch.device,
    compute_dtype: torch.dtype,
    pin_memory: bool | None = None,
) -> np.ndarray:
    """Super-resolve one overlapped block (inputs carry ``halo + 1`` base px of context).

    Parameters
    ----------
    base, surface, velocity : numpy.ndarray
        One nested block of each input group of
        :func:`xdeepbedmap.gapfill.fill_inputs`, context included, no data
        filled, channels first: ``base`` is (bed, accumulation, output mask),
        ``surface`` (surface), ``velocity`` (vx, vy).
    spec : ModelSpec
        The generator, loaded once per process (:func:`xdeepbedmap.model_store.load_model`).
    halo, window, batch_size : int
        Base pixels of context per window, largest window core, windows per
        network call.
    device, compute_dtype : torch.device, torch.dtype
        Where and in which precision the network runs (``dtype`` is
        ``map_overlap``'s own argument, the output's dtype).
    pin_memory : bool, optional
        Pin the batch buffers (default: on CUDA only); the results are the same.

    Returns
    -------
    numpy.ndarray
        The ``4 * core`` output block as float32, NaN where the mask is false.
    """
    return superresolve_block_members(
        base,
        surface,
        velocity,
        specs=(spec,),
        halo=halo,
        window=window,
        batch_size=batch_size,
        device=device,
        compute_dtype=compute_dtype,
        pin_memory=pin_memory,
    )[0]


def superresolve_block_members(
    base: np.ndarray,
    surface: np.ndarray,
    velocity: np.ndarray,
    *,
    specs: tuple[ModelSpec, ...],
    halo: int,
    window: int,
    batch_size: int,
    device: torch.device,
    compute_dtype: torch.dtype,
    pin_memory: bool | None = None,
) -> np.ndarray:
    """Super-resolve one overlapped block with every generator of ``specs``.

    Each window batch is cut from the block and copied to ``device`` once,
    then run through each member in turn, so the block is read once however
    many members there are. Parameters as :func:`superresolve_block`, with
    ``specs`` the members (a one-member tuple is the single-model path).

    Returns
    -------
    numpy.ndarray
        ``(len(specs), 4 * core_y, 4 * core_x)`` float32, member ``k`` along
        the first axis, NaN where the mask is false.
    """
    depth = halo + 1
    ny, nx = base.shape[1] - 2 * depth, base.shape[2] - 2 * depth
    keep = base[2, depth : depth + ny, depth : depth + nx] >= 0.5
    arrays = {"x": base[0:1], "w1": surface, "w2": velocity, "w3": base[1:2]}
    return run_windows(
        lambda n, m: _cut_overlapped(arrays, n, m),
        keep,
        specs=specs,
        halo=halo,
        window=window,
        batch_size=batch_size,
        device=device,
        compute_dtype=compute_dtype,
        pin_memory=pin_memory,
    )
