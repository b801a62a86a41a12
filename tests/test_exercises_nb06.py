"""The checks of notebook 06: a starting point chosen on validation (seeds too), sensitivity."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.exercises.nb06_chest_xray_transfer import (
    check_sensitivity,
    check_start_chosen_on_validation,
    row_validation,
)
from course_utils.results import Run
from course_utils.train import History

LABELS = np.array([0, 1, 0, 1, 1, 0])
RIGHT = np.eye(2)[LABELS]  # test macro F1 1.0
WRONG = np.eye(2)[1 - LABELS]  # test macro F1 0.0


def _run(val: float | None, probs: np.ndarray, info: dict | None = None) -> Run:
    history = None if val is None else History("val_loss", [{"epoch": 1, "val_macro_f1": val}], 1)
    return Run("run", probs, LABELS, info or {}, history)


def _out(capsys) -> str:
    return capsys.readouterr().out


def _runs() -> dict:
    """Random weights best on validation; ImageNet best on test; a tree without validation."""
    return {
        "random forest": [_run(None, RIGHT)],
        "CNN random weights": [_run(0.70, WRONG), _run(0.80, WRONG)],  # mean 0.75
        "CNN ImageNet weights": [_run(0.60, RIGHT), _run(0.62, RIGHT)],
        "CNN HAM10000 weights": _run(0.50, WRONG),  # a single Run, not a list
    }


def test_the_row_with_the_best_mean_validation_is_right_and_its_test_score_is_reported(capsys):
    check_start_chosen_on_validation("CNN random weights", _runs())
    out = _out(capsys)
    assert out.startswith("✅") and "0.75" in out
    assert "0.00 ± 0.00 over 2 seeds" in out  # its test macro F1, over the seeds
    assert "not meaningful" not in out  # nothing known against these runs


def test_the_row_best_on_test_only_is_named_as_such(capsys):
    check_start_chosen_on_validation("CNN ImageNet weights", _runs())
    out = _out(capsys)
    assert out.startswith("❌") and "best on test, not on validation" in out


def test_another_row_is_wrong_with_its_validation_score(capsys):
    check_start_chosen_on_validation("CNN HAM10000 weights", _runs())
    out = _out(capsys)
    assert out.startswith("❌") and "0.50" in out and "0.75" in out


def test_a_tree_has_no_validation_score_to_choose_on(capsys):
    check_start_chosen_on_validation("random forest", _runs())
    out = _out(capsys)
    assert out.startswith("❌") and "no validation score" in out


@pytest.mark.parametrize("answer", ["ImageNet", "table", 1])
def test_an_answer_that_is_no_row_is_wrong(capsys, answer):
    check_start_chosen_on_validation(answer, _runs())
    out = _out(capsys)
    assert out.startswith("❌") and "not a row" in out


@pytest.mark.parametrize("answer", [None, ...])
def test_no_answer_is_not_answered(capsys, answer):
    check_start_chosen_on_validation(answer, _runs())
    assert "Not answered" in _out(capsys)


def test_ties_as_the_table_shows_them_are_all_right(capsys):
    runs = {"a": _run(0.801, WRONG), "b": _run(0.799, RIGHT), "c": _run(0.7, RIGHT)}
    for answer in ("a", "b"):  # both read 0.80 in the table
        check_start_chosen_on_validation(answer, runs)
        assert _out(capsys).startswith("✅")
    check_start_chosen_on_validation("c", runs)
    assert _out(capsys).startswith("❌")


def test_smoke_or_generated_runs_say_their_numbers_mean_nothing(capsys):
    runs = {
        "a": _run(0.9, RIGHT, {"profile": "smoke", "source": "generated offline sample"}),
        "b": _run(0.1, WRONG),
    }
    check_start_chosen_on_validation("a", runs)
    out = _out(capsys)
    assert out.startswith("✅") and "not meaningful" in out and "generated" in out


def test_row_validation_is_the_mean_of_the_kept_epochs_and_skips_trees():
    scores = row_validation(_runs())
    assert scores == pytest.approx(
        {"CNN random weights": 0.75, "CNN ImageNet weights": 0.61, "CNN HAM10000 weights": 0.5}
    )


def test_the_kept_epoch_counts_not_the_last_one():
    history = History(
        "val_loss", [{"epoch": 1, "val_macro_f1": 0.4}, {"epoch": 2, "val_macro_f1": 0.9}], 1
    )
    run = Run("run", RIGHT, LABELS, {}, history)
    assert row_validation({"x": run}) == {"x": 0.4}


@pytest.mark.parametrize(
    ("fn", "verdict"),
    [
        (lambda y, p: float((p[y == 1] == 1).mean()), "✅"),
        (lambda y, p: float((p == 1).mean()), "❌"),  # over all predictions
        (lambda y, p: float((p[p == 1] == y[p == 1]).mean()), "❌"),  # precision
        (lambda y, p: float((p[y == 0] == 0).mean()), "❌"),  # specificity
    ],
)
def test_sensitivity_is_checked_against_the_recall_of_pneumonia(capsys, fn, verdict):
    check_sensitivity(fn)
    assert _out(capsys).startswith(verdict)


def test_sensitivity_not_written_is_not_answered(capsys):
    check_sensitivity(None)
    assert "Not answered" in _out(capsys)
    check_sensitivity(lambda y, p: None)
    assert "Not answered" in _out(capsys)
