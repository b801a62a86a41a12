"""Checks for notebook 07_activation_visualisation."""

from __future__ import annotations

import torch

from course_utils.exercises._check import report, unanswered
from course_utils.models import build_model
from course_utils.viz import activations


def _block_output(arch: str, block: str, size: int) -> torch.Size:
    """The shape of `block`'s output for one size×size input to an untrained `arch`."""
    model = build_model(arch, num_classes=2, weights=None, image_size=size)
    return activations(model, torch.zeros(1, 3, size, size), [block])[block].shape


def check_block_channels(answer: int | None, arch: str, block: str) -> None:
    """Exercise: the number of channels a block outputs."""
    if unanswered(answer):
        return
    expected = _block_output(arch, block, 64)[1]
    report(
        answer == expected,
        f"{expected} channels: {expected} filters, each a feature map.",
        "Record the block with activations(...) and read shape[1] (N × C × H × W).",
    )


def check_block_side(answer: int | None, arch: str, block: str, size: int) -> None:
    """Exercise: the width of a block's feature maps for a size×size input."""
    if unanswered(answer):
        return
    expected = _block_output(arch, block, size)[-1]
    report(
        answer == expected,
        f"{expected} px: every stride-2 layer halves the size.",
        f"Record the block for a {size}×{size} input and read the last axis of its shape.",
    )
