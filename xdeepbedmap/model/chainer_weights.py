"""Read generator weights saved by the original Chainer DeepBedMap (``save_npz``).

Only numpy is needed. Two facts about those archives drive the mapping:

* keys are Chainer link paths with ``W``/``b`` leaves
  (``input_block/conv_on_X/W``); torch names are the same path with dots and
  ``weight``/``bias`` leaves, because :class:`Generator` mirrors the links;
* the residual blocks, built with Chainer's ``Link.repeat``, are saved out of
  execution order: with ``n`` blocks, the block that runs at position
  ``p >= 1`` is stored under ``residual_network/{n - p}`` and position 0 under
  ``residual_network/0`` (``Sequential.insert`` misnames appended links).
"""

from __future__ import annotations

import re
import zipfile
from os import PathLike

import numpy as np
import torch

from xdeepbedmap.model.generator import Generator
from xdeepbedmap.model.integrity import check_finite

__all__ = ["chainer_key_for", "load_chainer_weights", "read_chainer_archive"]

_BLOCK_KEY = re.compile(r"^residual_network/(\d+)/")
_LEAF = {"W": "weight", "b": "bias"}


def read_chainer_archive(path: str | PathLike[str]) -> dict[str, np.ndarray]:
    """Return every array of a Chainer ``save_npz`` file, without unpickling.

    Raises
    ------
    ValueError
        If the file is not a readable ``.npz`` archive of plain arrays.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a readable Chainer save_npz (.npz) archive (no zip signature)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable Chainer save_npz (.npz) archive ({err})") from err
    except ValueError as err:
        # numpy raises ValueError for object arrays when pickles are refused.
        raise ValueError(f"{path}: not a plain Chainer save_npz archive ({err})") from err


def count_residual_blocks(keys: list[str] | set[str]) -> int:
    """Count the ``residual_network/K`` blocks named in an archive's keys."""
    indices = {int(m.group(1)) for key in keys if (m := _BLOCK_KEY.match(key))}
    if not indices:
        raise ValueError("archive has no 'residual_network/K/...' keys: not a DeepBedMap generator")
    expected = set(range(len(indices)))
    if indices != expected:
        raise ValueError(
            f"residual_network block indices must be 0..{len(indices) - 1}, found {sorted(indices)}"
        )
    return len(indices)


def chainer_key_for(torch_key: str, num_residual_blocks: int) -> str:
    """Chainer archive key holding the torch state-dict entry ``torch_key``.

    Examples
    --------
    >>> chainer_key_for("input_block.conv_on_X.weight", 12)
    'input_block/conv_on_X/W'
    >>> chainer_key_for("residual_network.1.residual_dense_block1.conv_layer1.bias", 12)
    'residual_network/11/residual_dense_block1/conv_layer1/b'
    """
    *path, leaf = torch_key.split(".")
    if path[0] == "residual_network":
        position = int(path[1])
        path[1] = str(0 if position == 0 else num_residual_blocks - position)
    chainer_leaf = {v: k for k, v in _LEAF.items()}[leaf]
    return "/".join([*path, chainer_leaf])


def load_chainer_weights(path: str | PathLike[str], residual_scaling: float = 0.2) -> Generator:
    """Build a :class:`Generator` from a Chainer DeepBedMap ``save_npz`` file.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file written by Chainer's ``serializers.save_npz``.
    residual_scaling : float
        Residual scaling the weights were trained with; the archive does not
        record it (the published model used 0.2).

    Returns
    -------
    Generator
        The model in eval mode, with the number of residual blocks read from
        the archive.

    Raises
    ------
    ValueError
        If the file is not such an archive, lacks a key, has an extra key, or
        holds an array of the wrong shape; the message names the key and shapes.
    """
    arrays = read_chainer_archive(path)
    blocks = count_residual_blocks(set(arrays))
    model = Generator(num_residual_blocks=blocks, residual_scaling=residual_scaling)
    state = model.state_dict()

    wanted = {chainer_key_for(key, blocks): key for key in state}
    missing = sorted(set(wanted) - set(arrays))
    extra = sorted(set(arrays) - set(wanted))
    if missing:
        raise ValueError(
            f"{path}: missing {len(missing)} key(s) of a {blocks}-block DeepBedMap generator, "
            f"first {missing[0]!r}"
        )
    if extra:
        raise ValueError(
            f"{path}: {len(extra)} unexpected key(s) for a {blocks}-block DeepBedMap generator, "
            f"first {extra[0]!r}"
        )
    new_state = {}
    for chainer_key, torch_key in wanted.items():
        array = arrays[chainer_key]
        expected = tuple(state[torch_key].shape)
        if array.shape != expected:
            raise ValueError(
                f"{path}: array {chainer_key!r} has shape {array.shape}, expected {expected}"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(
                f"{path}: array {chainer_key!r} has dtype {array.dtype}, expected float"
            )
        new_state[torch_key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    check_finite(new_state, str(path))
    model.load_state_dict(new_state)
    return model.eval()
