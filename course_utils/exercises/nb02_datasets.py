"""Checks for notebook 02_datasets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_utils.datasets import xray_patient
from course_utils.exercises._check import check_function, report, unanswered
from course_utils.metrics import classification_scores


def check_patient_id(fn: Callable[[str], str] | None) -> None:
    """Exercise: fn(file name) returns the patient of a chest X-ray file of Kermany et al."""
    names = [
        "person1_bacteria_1.jpeg",
        "person1_virus_6.jpeg",
        "person1619_bacteria_4261.jpeg",
        "IM-0115-0001.jpeg",
        "NORMAL2-IM-0115-0002.jpeg",
        "NORMAL2-IM-1427-0001.jpeg",
    ]
    check_function(
        fn,
        [((name,), xray_patient(name)) for name in names],
        "Every file maps to its patient: these are the groups a split must respect.",
        lambda args, expected, got: (
            f"For {args[0]!r} you return {got!r}; the patient is {expected!r}. Hint: "
            "re.match(r'(person\\d+)_', name) or re.search(r'(IM-\\d+)-', name)."
        ),
    )


def check_leaked_lesions(fn: Callable[[np.ndarray, np.ndarray], int] | None) -> None:
    """Exercise: fn(train_groups, test_groups) counts the lesions with images on both sides."""
    rng = np.random.default_rng(0)
    pairs = [
        (rng.integers(0, 30, 40).astype(str), rng.integers(20, 50, 15).astype(str))
        for _ in range(5)
    ]
    check_function(
        fn,
        [(pair, len(np.intersect1d(*pair))) for pair in pairs],
        "Right: each of those lesions is seen in training and then 'tested'.",
        lambda args, expected, got: (
            f"Expected {expected}, got {got}. Count each shared lesion once, however many "
            "images it has (np.intersect1d or set &)."
        ),
    )


def check_majority_baseline(
    accuracy: float | None, macro_f1: float | None, labels: np.ndarray, num_classes: int
) -> None:
    """Exercise: accuracy and macro F1 of always predicting the most frequent class."""
    if unanswered(accuracy, macro_f1):
        return
    labels = np.asarray(labels).reshape(-1)
    majority = np.full_like(labels, np.bincount(labels).argmax())
    scores = classification_scores(labels, majority, num_classes)
    ok = abs(accuracy - scores["accuracy"]) < 0.01 and abs(macro_f1 - scores["macro_f1"]) < 0.01
    return report(
        ok,
        f"Accuracy {scores['accuracy']:.2f} but macro F1 {scores['macro_f1']:.2f}: "
        "a useless model can look accurate on imbalanced data.",
        f"Expected accuracy {scores['accuracy']:.2f} and macro F1 {scores['macro_f1']:.2f}. "
        "Predict np.bincount(labels).argmax() for every image and score it with "
        "classification_scores or f1_table.",
    )
