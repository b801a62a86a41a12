"""Checks for notebook 00_setup."""

from __future__ import annotations

import torch

from course_utils.data import HAM10000_COUNTS
from course_utils.exercises._check import report, unanswered


def check_seeded_draws(first: torch.Tensor | None, second: torch.Tensor | None) -> None:
    """Exercise: two draws made right after the same seed_everything(...) are identical."""
    if unanswered(first, second):
        return
    same = torch.is_tensor(first) and torch.is_tensor(second) and torch.equal(first, second)
    return report(
        same,
        "Same seed, same numbers: your runs can be repeated.",
        "The draws differ, or are not torch tensors: call seed_everything with the same seed "
        "right before each torch.rand(3).",
    )


def check_nv_share(answer: float | None) -> None:
    """Exercise: the share of melanocytic nevi (nv) among HAM10000's images, as a fraction."""
    if unanswered(answer):
        return
    share = HAM10000_COUNTS["nv"] / sum(HAM10000_COUNTS.values())
    value = float(answer) / 100 if float(answer) > 1 else float(answer)
    return report(
        abs(value - share) < 0.01,
        f"{share:.1%} of the images are nv: a model that always says nv is "
        f"{share:.0%} accurate and useless. That is why we report macro F1.",
        "Divide the nv count by the total of all seven counts.",
    )
