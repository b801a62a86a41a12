"""Checks for notebook 09_architectures."""

from __future__ import annotations

import pandas as pd

from course_utils.exercises._check import report, unanswered
from course_utils.models import build_model, count_parameters, truncate


def check_cheapest(answer: str | None, table: pd.DataFrame, column: str) -> None:
    """Exercise: the row of `table` with the smallest value in `column` (ties: any of them)."""
    if unanswered(answer):
        return
    values = table[column]
    best = list(values.index[values == values.min()])
    report(
        answer in best,
        f"Yes: {answer!r} has the smallest {column}, {values.min():,.3g}.",
        f"Not that one: sort the table by {column!r} and take the first row.",
    )


def check_truncated_parameters(answer: int | None, arch: str, cut: str, classes: int) -> None:
    """Exercise: the parameters of `arch` truncated after block `cut`, with a new linear head."""
    if unanswered(answer):
        return
    expected = count_parameters(
        truncate(build_model(arch, classes, weights=None, image_size=224), cut, classes)
    )
    report(
        answer == expected,
        f"{expected:,} parameters: the kept blocks plus the new head.",
        "Build the model, truncate it, then count_parameters(...). The head is "
        "channels × classes + classes.",
    )
