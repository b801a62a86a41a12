"""Checks for notebook 04_baselines."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from course_utils.exercises._check import report, unanswered


def _from_matrix(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (true, predicted) labels a confusion matrix counts (rows true, columns predicted)."""
    true, pred = np.nonzero(cm)
    counts = cm[true, pred]
    return np.repeat(true, counts), np.repeat(pred, counts)


ALWAYS_CLASS_5 = np.eye(7, dtype=int)[5]  # every image predicted as class 5 (nv)
# Confusion matrices (rows: true class, columns: predicted), each with what it tests.
MATRIX_CASES = {
    "three classes, some mistakes": np.array([[5, 1, 0], [2, 6, 2], [0, 3, 1]]),
    "a perfect classifier": np.diag([4, 1, 7]),
    "always the majority class (7 classes)": np.outer([3, 5, 11, 1, 11, 67, 2], ALWAYS_CLASS_5),
    "a class with no images (its row is all zero)": np.array([[3, 1, 0], [0, 0, 0], [2, 0, 4]]),
    "two classes, one rare": np.array([[90, 0], [8, 2]]),
}


def _matrix_hint(case: str, cm: np.ndarray, got: object) -> str:
    """Why `got` is not the balanced accuracy of `cm` (a typical mistake, named if recognised)."""
    accuracy = np.trace(cm) / cm.sum()
    columns = cm.sum(axis=0)
    precision = np.diag(cm)[columns > 0] / columns[columns > 0]
    if np.isclose(got, accuracy) and not np.isclose(got, _expected(cm)):
        return (
            f"On {case!r} that is the accuracy (diagonal / all): average the recall of each class."
        )
    if np.isclose(got, precision.mean()):
        return f"On {case!r} that averages precision: recall divides the diagonal by the ROW sums."
    if case.startswith("a class with no images"):
        return "A class with no images has no recall: leave it out of the mean, as sklearn does."
    return (
        f"On {case!r}: expected {_expected(cm):.4f}, the mean over classes of diagonal / row sum."
    )


def _expected(cm: np.ndarray) -> float:
    with warnings.catch_warnings():  # sklearn warns about predicted classes with no images
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(*_from_matrix(cm)))


def check_balanced_accuracy_from_matrix(fn: Callable[[np.ndarray], float] | None) -> None:
    """Exercise: balanced accuracy from a confusion matrix, against sklearn's on fixed cases."""
    if unanswered(fn):
        return
    for case, cm in MATRIX_CASES.items():
        got = fn(cm.copy())
        if unanswered(got):
            return
        try:
            value = float(got)
        except (TypeError, ValueError):
            return report(False, "", f"Return one number, not {type(got).__name__}.")
        if not np.isclose(value, _expected(cm), atol=1e-9):
            return report(False, "", _matrix_hint(case, cm, value))
    report(
        True,
        "Equal to sklearn's balanced_accuracy_score on every case. Always predicting the "
        "majority class scores 1/7 whatever its accuracy: every class counts the same.",
        "",
    )


def check_majority_prediction(
    balanced_accuracy: float | None,
    accuracy: float | None,
    train_labels: np.ndarray,
    test_labels: np.ndarray,
) -> None:
    """Exercise: predicted scores of always answering the training set's most frequent class."""
    if unanswered(balanced_accuracy, accuracy):
        return
    majority = int(np.bincount(train_labels).argmax())
    always = np.full(len(test_labels), majority)
    expected_balanced = float(balanced_accuracy_score(test_labels, always))
    expected_accuracy = float(np.mean(test_labels == majority))
    classes = len(np.unique(test_labels))
    right_balanced = abs(float(balanced_accuracy) - expected_balanced) < 0.005
    right_accuracy = abs(float(accuracy) - expected_accuracy) < 0.005
    report(
        right_balanced and right_accuracy,
        f"Balanced accuracy 1/{classes} = {expected_balanced:.3f} (one class of {classes} "
        f"recalled in full, the others not at all); accuracy {expected_accuracy:.3f}, the share "
        "of that class in the test set. Accuracy rewards ignoring the rare classes; balanced "
        "accuracy does not.",
        ("Balanced accuracy: right. " if right_balanced else "Balanced accuracy: the recall is 1 "
         "for the majority class and 0 for every other class in the test set; average them. ")
        + ("Accuracy: right." if right_accuracy else "Accuracy: the share of test images "
           "whose true class is the training set's most frequent one."),
    )  # fmt: skip
