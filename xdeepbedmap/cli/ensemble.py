"""``xdeepbedmap train --members K``: a calibrated deep ensemble in one folder.

A thin wrapper over :func:`xdeepbedmap.ensemble.training.train_ensemble`;
``train`` cuts the tiles and splits them as for one generator.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from xdeepbedmap.ensemble.training import MemberResult, train_ensemble
from xdeepbedmap.training.config import TrainConfig
from xdeepbedmap.training.dataset import TileDataset
from xdeepbedmap.training.trainer import format_epoch

__all__ = ["check_ensemble_output", "train_ensemble_from_args"]


def check_ensemble_output(output: Path) -> None:
    """Refuse an ``--output`` that cannot be an ensemble folder, before any tile is cut."""
    if output.suffix == ".safetensors" or (output.exists() and not output.is_dir()):
        raise ValueError(
            f"--output {output}: with --members K > 1 this is an ensemble folder, "
            "not a .safetensors file"
        )


def train_ensemble_from_args(
    args: argparse.Namespace, config: TrainConfig, tiles: Any, train_idx: Any, val_idx: Any,
    source: dict[str, Any],
) -> int:  # fmt: skip
    """Train ``args.members`` members into ``args.output``, one line per member finished."""
    done: list[MemberResult] = []
    count = args.members

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        # members run in order, so the one training is the next not yet reported
        print(f"member {len(done) + 1}/{count}: {format_epoch(epoch, row)}")

    def on_member(member: MemberResult) -> None:
        done.append(member)
        how = "already trained" if member.skipped else f"trained in {member.seconds:.0f} s"
        print(
            f"member {member.index + 1}/{count} (seed {member.seed}): {how}, best validation "
            f"RMSE {member.val_rmse:.2f} m at epoch {member.epoch} -> {member.path}"
        )

    started = time.perf_counter()
    result = train_ensemble(
        TileDataset(tiles, train_idx),
        TileDataset(tiles, val_idx),
        config,
        args.output,
        count,
        bootstrap=not args.no_bootstrap,
        storage="float16" if args.half else "float32",
        run_root=args.run_dir,
        device=args.device,
        restart=args.restart,
        overwrite=args.overwrite,
        on_epoch=on_epoch,
        on_member=on_member,
        metadata={"training_data": source, "tiles": int(tiles.sizes["tile"])},
    )
    size = sum(member.path.stat().st_size for member in result.members)
    calibration = result.calibration
    print(
        f"calibrated: std scale {calibration.std_scale:.4g} from {calibration.n_pixels} pixels "
        f"of {calibration.fitted_on}"
    )
    print(
        f"ensemble of {count} in {time.perf_counter() - started:.0f} s: wrote {result.manifest} "
        f"({size / 1e6:.1f} MB of members)"
    )
    return 0
