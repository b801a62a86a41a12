"""The checks of notebook 04: balanced accuracy from a confusion matrix; the majority baseline."""

import numpy as np
import pytest

from course_utils.exercises.nb04_baselines import (
    check_balanced_accuracy_from_matrix,
    check_majority_prediction,
)


def _says(capsys) -> str:
    return capsys.readouterr().out.strip()


def _balanced(cm):
    rows = cm.sum(axis=1)
    present = rows > 0
    return float((np.diag(cm)[present] / rows[present]).mean())


def test_balanced_accuracy_right(capsys):
    check_balanced_accuracy_from_matrix(_balanced)
    assert _says(capsys).startswith("✅")


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (lambda cm: np.trace(cm) / cm.sum(), "accuracy"),
        (lambda cm: (np.diag(cm) / np.maximum(cm.sum(axis=0), 1)).mean(), "precision"),
        (lambda cm: (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).mean(), "no images"),
        (lambda cm: np.nanmean(np.diag(cm) / cm.sum(axis=1)) ** 2, "expected"),
        (lambda cm: [0.5], "not list"),
    ],
)
def test_balanced_accuracy_wrong(capsys, fn, hint):
    with np.errstate(divide="ignore", invalid="ignore"):
        check_balanced_accuracy_from_matrix(fn)
    out = _says(capsys)
    assert out.startswith("❌") and hint in out


@pytest.mark.parametrize("fn", [None, lambda cm: None])
def test_balanced_accuracy_unanswered(capsys, fn):
    check_balanced_accuracy_from_matrix(fn)
    assert "Not answered" in _says(capsys)


TRAIN = np.array([0, 1, 1, 2, 2, 2])
TEST = np.array([0, 1, 2, 2, 2, 2, 1])  # the majority (2) is 4 of 7; three classes


def test_majority_right(capsys):
    check_majority_prediction(1 / 3, 4 / 7, TRAIN, TEST)
    assert _says(capsys).startswith("✅ Balanced accuracy 1/3")


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        ((4 / 7, 4 / 7), "Accuracy: right"),  # balanced accuracy taken for accuracy
        ((1 / 3, 1 / 3), "Balanced accuracy: right"),
        ((1 / 7, 4 / 7), "Accuracy: right"),  # 1/7 classes, but only 3 are in this test set
    ],
)
def test_majority_wrong(capsys, answers, said):
    check_majority_prediction(*answers, TRAIN, TEST)
    out = _says(capsys)
    assert out.startswith("❌") and said in out


def test_majority_unanswered(capsys):
    check_majority_prediction(None, 0.5, TRAIN, TEST)
    assert "Not answered" in _says(capsys)
