"""Checks for notebook 05_freeze_strategies (check_best_strategy serves 06 too)."""

from __future__ import annotations

import pandas as pd

from course_utils.config import Profile
from course_utils.exercises._check import report, unanswered
from course_utils.models import build_model, count_parameters, freeze


def check_trainable_parameters(
    answer: int | None, trainable: tuple[str, ...], classes: int, profile: Profile
) -> None:
    """Exercise: VGG16 (seed head, profile's image size) parameters that learn with `trainable`."""
    if unanswered(answer):
        return
    vgg16 = build_model("vgg16", classes, weights=None, head="seed", profile=profile)
    model = freeze(vgg16, trainable)
    expected = count_parameters(model, trainable_only=True)
    report(
        answer == expected,
        f"{expected:,} parameters learn: the unfrozen blocks plus the head.",
        f"Expected {expected:,}: sum the 'trainable' column of block_table(model) after freeze.",
    )


def check_best_strategy(answer: str | None, table: pd.DataFrame) -> None:
    """Exercise: a column of `table` with the highest macro-average F1 (ties: any of them)."""
    if unanswered(answer):
        return
    macro = table.loc["macro avg"]
    best = list(macro.index[macro == macro.max()])
    report(
        answer in best,
        f"Yes: {answer!r} has the best macro F1, {macro.max():.2f}.",
        f"Not that one: look at the 'macro avg' row; the largest value is {macro.max():.2f}.",
    )
