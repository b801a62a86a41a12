"""Checks for notebook 06_chest_xray_transfer (a choice on validation as in nb05, with seeds)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from course_utils.exercises._check import check_function, report, unanswered
from course_utils.exercises.nb05_freeze_strategies import macro_f1_on_test, not_meaningful
from course_utils.results import Run


def _seeds(kept: Run | Sequence[Run]) -> list[Run]:
    return [kept] if isinstance(kept, Run) else list(kept)


def row_validation(runs: Mapping[str, Run | Sequence[Run]]) -> dict[str, float]:
    """Each row's validation macro F1 (its kept epoch's; the mean over seeds); none for trees."""
    scores = {}
    for name, kept in runs.items():
        values = [
            run.history.best["val_macro_f1"]
            for run in _seeds(kept)
            if run.history is not None and run.history.epochs
        ]
        if values:
            scores[name] = float(np.mean(values))
    return scores


def _shown(value: float) -> float:
    """The value as the comparison table shows it (two decimals): rows equal there are ties."""
    return float(f"{value:.2f}")


def _test_score(kept: Run | Sequence[Run]) -> str:
    """Test macro F1 of a row: one run's, or the mean ± sd over its seeds."""
    scores = [macro_f1_on_test(run) for run in _seeds(kept)]
    if len(scores) == 1:
        return f"{scores[0]:.2f}"
    return f"{np.mean(scores):.2f} ± {np.std(scores, ddof=1):.2f} over {len(scores)} seeds"


def check_start_chosen_on_validation(
    answer: str | None, runs: Mapping[str, Run | Sequence[Run]]
) -> None:
    """Exercise: the row of the comparison with the best validation macro F1 (ties: any).

    runs: row name -> Run or list of Runs (one per seed, compared by their mean). Rows without
    epochs (the trees, fitted on train and validation together) have no validation score.
    """
    if unanswered(answer):
        return
    scores = row_validation(runs)
    if answer in runs and answer not in scores:
        return report(
            False,
            "",
            f"{answer!r} has no validation score (it was fitted on the validation images too), "
            f"so it cannot be chosen on validation: choose among {', '.join(scores)}.",
        )
    if answer not in scores:
        return report(False, "", f"{answer!r} is not a row of the table: {', '.join(runs)}.")
    top = max(_shown(value) for value in scores.values())
    tests = {name: np.mean([macro_f1_on_test(r) for r in _seeds(runs[name])]) for name in scores}
    if _shown(scores[answer]) == top:
        every = [run for kept in runs.values() for run in _seeds(kept)]
        reasons = not_meaningful({str(i): run for i, run in enumerate(every)})
        note = (
            f"\n   Here the numbers are not meaningful ({'; '.join(reasons)}): the tick says you "
            f"chose on validation, not which start is best."
            if reasons
            else ""
        )
        return report(
            True,
            f"{answer!r}: the best validation macro F1 ({top:.2f}). Its test macro F1, "
            f"{_test_score(runs[answer])}, is the one to report: the test set played no part in "
            f"choosing it.{note}",
            "",
        )
    if _shown(tests[answer]) == max(_shown(value) for value in tests.values()):
        return report(
            False,
            "",
            f"{answer!r} is best on test, not on validation. A row picked for its test score has "
            f"an optimistic test score: choose with the 'val macro F1' column.",
        )
    return report(
        False,
        "",
        f"Not that one: {answer!r} has a validation macro F1 of {scores[answer]:.2f}, the best "
        f"is {top:.2f}. Read the 'val macro F1' column.",
    )


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
