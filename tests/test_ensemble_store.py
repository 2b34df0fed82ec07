"""Ensemble folders: complete manifests only, members checked against their digests."""

from __future__ import annotations

import shutil

import pytest
import torch

from xdeepbedmap.ensemble import (
    Calibration,
    EnsembleError,
    member_name,
    read_ensemble,
    write_ensemble,
)
from xdeepbedmap.model import Generator
from xdeepbedmap.model.checkpoint import save_checkpoint


def _members(folder, count):
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        torch.manual_seed(k)
        save_checkpoint(Generator(num_residual_blocks=1), folder / member_name(k))
    return [{"file": member_name(k), "seed": k} for k in range(count)]


def test_round_trip_with_calibration(tmp_path):
    members = _members(tmp_path / "ens", 2)
    write_ensemble(
        tmp_path / "ens", members, calibration=Calibration(1.7, "seed 200", 10), metadata={"w": 2}
    )
    ensemble = read_ensemble(tmp_path / "ens")
    assert len(ensemble.members) == 2
    assert ensemble.members[0].digest != ensemble.members[1].digest
    assert ensemble.std_scale == 1.7
    assert ensemble.metadata == {"w": 2}


def test_folder_without_manifest_is_refused(tmp_path):
    _members(tmp_path / "ens", 1)
    with pytest.raises(EnsembleError, match="no ensemble.json"):
        read_ensemble(tmp_path / "ens")


def test_replaced_member_is_refused(tmp_path):
    members = _members(tmp_path / "ens", 2)
    write_ensemble(tmp_path / "ens", members)
    shutil.copy(tmp_path / "ens" / member_name(0), tmp_path / "ens" / member_name(1))
    with pytest.raises(EnsembleError, match="member_01.*expected"):
        read_ensemble(tmp_path / "ens")


def test_missing_member_is_refused(tmp_path):
    members = _members(tmp_path / "ens", 2)
    write_ensemble(tmp_path / "ens", members)
    (tmp_path / "ens" / member_name(1)).unlink()
    with pytest.raises(EnsembleError, match="member_01.safetensors.*missing"):
        read_ensemble(tmp_path / "ens")


def test_file_list_is_uncalibrated(tmp_path):
    _members(tmp_path / "ens", 2)
    ensemble = read_ensemble([tmp_path / "ens" / member_name(k) for k in range(2)])
    assert ensemble.calibration is None and ensemble.std_scale == 1.0


def test_bad_scale_is_refused():
    with pytest.raises(EnsembleError, match="std_scale"):
        Calibration(0.0, "x", 1)
