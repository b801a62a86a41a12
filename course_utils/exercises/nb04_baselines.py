"""Checks for notebook 04_baselines."""

from __future__ import annotations

from course_utils.exercises._check import report, unanswered
from course_utils.metrics import classification_scores
from course_utils.results import Run


def check_pixel_features(answer: int | None, size: int, channels: int) -> None:
    """Exercise: how many pixel features one size×size image with `channels` gives a tree."""
    if unanswered(answer):
        return
    expected = size * size * channels
    report(
        answer == expected,
        f"{expected:,} features: one per pixel and colour channel.",
        "Multiply height, width and the number of colour channels.",
    )


def check_balanced_accuracy(answer: float | None, run: Run) -> None:
    """Exercise: the balanced accuracy of a kept run's test predictions."""
    if unanswered(answer):
        return
    scores = classification_scores(run.labels, run.probs.argmax(axis=1), run.probs.shape[1])
    expected = scores["balanced_accuracy"]
    report(
        abs(float(answer) - expected) < 1e-3,
        f"{expected:.3f}, against accuracy {scores['accuracy']:.3f}: rare classes pull it down.",
        f"Expected {expected:.3f}: predictions are probs.argmax(axis=1); then average the "
        "recall of each class (sklearn's balanced_accuracy_score).",
    )
