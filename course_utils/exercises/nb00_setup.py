"""Checks for notebook 00_setup."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch

from course_utils.config import seed_everything
from course_utils.exercises._check import report, unanswered

# Exercise 1 (predict before running): what one seed fixes. Each statement is True or False.
SEED_STATEMENTS = {
    "a": "After one seed_everything(0), two torch.rand(3) draws in a row are equal.",
    "b": "seed_everything(0) before each of two torch.rand(3) draws makes the two draws equal.",
    "c": "A NumPy draw between seed_everything(0) and torch.rand(3) changes torch's draw.",
}


def _seed_outcomes() -> dict[str, bool]:
    """The true answer to each statement, found by running it (the generators are restored)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng():
        seed_everything(0)
        in_a_row = torch.equal(torch.rand(3), torch.rand(3))
        seed_everything(0)
        first = torch.rand(3)
        seed_everything(0)
        reseeded = torch.equal(first, torch.rand(3))
        seed_everything(0)
        np.random.rand()  # noqa: NPY002 (the legacy global generator, as libraries use it)
        after_numpy = torch.rand(3)
    random.setstate(python_state)
    np.random.set_state(numpy_state)  # noqa: NPY002
    return {"a": in_a_row, "b": reseeded, "c": not torch.equal(first, after_numpy)}


def check_seed_predictions(predictions: dict | None) -> None:
    """Exercise: True/False for each of SEED_STATEMENTS, predicted before running them."""
    if unanswered(predictions) or unanswered(*(predictions.get(k) for k in SEED_STATEMENTS)):
        return
    truth = _seed_outcomes()
    wrong = [k for k in SEED_STATEMENTS if bool(predictions[k]) != truth[k]]
    report(
        not wrong,
        "All three right: a seed fixes a sequence of draws, not one value, and each library has "
        "its own generator. That is why every training run calls seed_everything(seed) itself, "
        "just before it builds its model: what ran before cannot change its weights.",
        f"Not quite: statement{'s' if len(wrong) > 1 else ''} {', '.join(wrong)} "
        f"{'are' if len(wrong) > 1 else 'is'} the other way round: the lines printed above "
        "show what each one gave.",
    )


def _draws() -> tuple[float, float, torch.Tensor]:
    """One draw from Python's, NumPy's (global) and PyTorch's generators."""
    return random.random(), float(np.random.rand()), torch.rand(3)  # noqa: NPY002


def _same(a: object, b: object) -> bool:
    return torch.equal(a, b) if torch.is_tensor(a) else a == b


_GENERATORS = (
    "Python's `random` (random.seed)",
    "NumPy's global generator (np.random.seed)",
    "PyTorch's generator (torch.manual_seed)",
)


def check_seed_everything(fn: Callable[[int], None] | None) -> None:
    """Exercise: the learner's seed_everything gives the same draws as the course's."""
    if unanswered(fn):
        return
    for seed in (0, 1, 2024):
        _draws()  # move every generator on, so one that fn leaves alone is caught
        fn(seed)
        got = _draws()
        fn(seed)
        repeated = _draws()
        seed_everything(seed)
        expected = _draws()
        missed = [
            name for name, a, b in zip(_GENERATORS, got, expected, strict=True) if not _same(a, b)
        ]
        if not any(_same(a, b) for a, b in zip(got, repeated, strict=True)):
            return report(False, "", "Nothing was seeded: write the three calls in the body.")
        if missed:
            return report(
                False,
                "",
                f"With seed {seed}, these gave other numbers than the course's seed_everything: "
                f"{'; '.join(missed)}. Seed all three, with the seed you are given.",
            )
    report(
        True,
        "Three generators, three calls: Python's, NumPy's and PyTorch's (which also seeds the "
        "GPUs). Shuffling, augmentation and weight initialisation now repeat exactly (on the "
        "same hardware and library versions).",
        "",
    )
