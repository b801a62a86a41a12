"""Checks for notebook 06_chest_xray_transfer (it also uses nb05's check_best_strategy)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_utils.exercises._check import check_function


def check_sensitivity(fn: Callable[[np.ndarray, np.ndarray], float] | None) -> None:
    """Exercise: fn(labels, predicted) returns the sensitivity (recall of class 1, pneumonia)."""
    cases = [
        ([1, 1, 1, 0], [1, 1, 0, 0]),
        ([1, 0, 1, 0, 1], [1, 1, 1, 0, 0]),
        ([0, 1, 1], [0, 0, 0]),
    ]
    check_function(
        fn,
        [
            ((np.array(a), np.array(b)), float(np.mean(np.array(b)[np.array(a) == 1] == 1)))
            for a, b in cases
        ],
        "Right: among the X-rays that show pneumonia, the share the model flags.",
        lambda args, expected, got: (
            f"For labels {args[0].tolist()} and predictions {args[1].tolist()} the sensitivity "
            f"is {expected:.2f}, not {got}. Only the images whose label is 1 count."
        ),
    )
