"""The checks of notebook 00: the seed predictions and the learner's seed_everything."""

import random

import numpy as np
import pytest
import torch

from course_utils.exercises.nb00_setup import (
    SEED_STATEMENTS,
    check_seed_everything,
    check_seed_predictions,
)


def _says(capsys) -> str:
    return capsys.readouterr().out.strip()


RIGHT = {"a": False, "b": True, "c": False}


@pytest.mark.parametrize(
    "predictions",
    [
        {"a": True, "b": True, "c": False},
        {"a": False, "b": False, "c": False},
        {**RIGHT, "c": True},
    ],
)
def test_seed_predictions_wrong(capsys, predictions):
    check_seed_predictions(predictions)
    assert _says(capsys).startswith("❌ Not quite")


def test_seed_predictions(capsys):
    check_seed_predictions(RIGHT)
    assert _says(capsys).startswith("✅")
    assert set(SEED_STATEMENTS) == set(RIGHT)


@pytest.mark.parametrize("predictions", [None, {"a": None, "b": True, "c": False}, {"a": True}])
def test_seed_predictions_unanswered(capsys, predictions):
    check_seed_predictions(predictions)
    assert "Not answered" in _says(capsys)


def test_seed_predictions_leave_the_generators_alone():
    torch.manual_seed(3)
    random.seed(3)
    expected = torch.rand(2), random.random()
    torch.manual_seed(3)
    random.seed(3)
    check_seed_predictions(RIGHT)
    assert torch.equal(torch.rand(2), expected[0]) and random.random() == expected[1]


def _all_three(seed):
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def test_seed_everything_right(capsys):
    check_seed_everything(_all_three)
    assert _says(capsys).startswith("✅")


def _new_numpy_generator(seed):  # a new Generator leaves the global one unseeded
    random.seed(seed)
    np.random.default_rng(seed)
    torch.manual_seed(seed)


@pytest.mark.parametrize(
    ("fn", "named"),
    [
        (lambda seed: torch.manual_seed(seed), "Python's"),
        (_new_numpy_generator, "NumPy's"),
        (lambda seed: (random.seed(seed), np.random.seed(seed)), "PyTorch's"),  # noqa: NPY002
        (lambda seed: _all_three(42), "PyTorch's"),  # ignores its argument
        (lambda seed: None, "Nothing was seeded"),  # an empty body
    ],
)
def test_seed_everything_wrong(capsys, fn, named):
    check_seed_everything(fn)
    out = _says(capsys)
    assert out.startswith("❌") and named in out


def test_seed_everything_unanswered(capsys):
    check_seed_everything(None)
    assert "Not answered" in _says(capsys)
