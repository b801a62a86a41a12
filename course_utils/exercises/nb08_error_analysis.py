"""Checks for notebook 08_error_analysis."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_utils.exercises._check import check_function, report, unanswered
from course_utils.metrics import expected_calibration_error, threshold_for_sensitivity


def check_threshold(
    answer: float | None, labels: np.ndarray, scores: np.ndarray, target: float
) -> None:
    """Exercise: the highest threshold whose sensitivity on (labels, scores) reaches `target`."""
    if unanswered(answer):
        return
    expected = threshold_for_sensitivity(labels, scores, target)
    report(
        abs(float(answer) - expected) < 1e-9,
        f"{expected:.4f}: any higher and a positive would fall below it.",
        f"Not quite ({float(answer):.4f}). Among the scores of the positive images, sorted from "
        f"high to low, take the one at position ceil({target} × number of positives).",
    )


def _ece_cases() -> list[tuple[tuple[np.ndarray, np.ndarray, int], float]]:
    """Random (probs, labels, bins) cases with their ECE rounded to 6 decimals."""
    rng = np.random.default_rng(0)
    cases = []
    for classes, bins in ((2, 5), (3, 10), (7, 4)):
        logits = rng.normal(size=(60, classes)) * 2
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = rng.integers(0, classes, 60)
        expected = round(expected_calibration_error(probs, labels, bins), 6)
        cases.append(((probs, labels, bins), expected))
    return cases


def check_ece(fn: Callable[[np.ndarray, np.ndarray, int], float] | None) -> None:
    """Exercise: fn(probs, labels, bins) computes the expected calibration error."""
    if unanswered(fn):
        return

    def rounded(*args: object) -> object:
        """The learner's answer for one case, computed once and rounded to 6 decimals."""
        got = fn(*args)
        return got if got is None or got is Ellipsis else round(float(got), 6)

    check_function(
        rounded,
        _ece_cases(),
        "Your ECE matches on several binnings: bins weighted by their share of predictions.",
        lambda args, expected, got: (
            f"With {args[1].max() + 1} classes and {args[2]} bins: expected {expected:.4f}, got "
            f"{got}. Weight each bin's |confidence − accuracy| by its count; divide by the total."
        ),
    )
