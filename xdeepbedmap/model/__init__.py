"""The DeepBedMap networks in torch, and their weight files."""

from xdeepbedmap.model.chainer_weights import load_chainer_weights
from xdeepbedmap.model.checkpoint import (
    CheckpointError,
    export_checkpoint,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from xdeepbedmap.model.deform_conv import DeformConv2d, deform_conv2d
from xdeepbedmap.model.discriminator import Discriminator
from xdeepbedmap.model.generator import Generator
from xdeepbedmap.model.precision import FastGenerator, PrecisionError, resolve_precision

__all__ = [
    "CheckpointError",
    "DeformConv2d",
    "Discriminator",
    "FastGenerator",
    "Generator",
    "PrecisionError",
    "deform_conv2d",
    "export_checkpoint",
    "load_chainer_weights",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "resolve_precision",
    "save_checkpoint",
]
