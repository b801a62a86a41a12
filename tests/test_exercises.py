import numpy as np
import pytest
import torch

from course_utils import exercises


def _says(capsys) -> str:
    return capsys.readouterr().out.strip()[0]


@pytest.mark.parametrize(
    ("check", "right", "wrong"),
    [
        (exercises.check_nv_share, [6705 / 10015], [0.5]),
        (exercises.check_nv_share, [66.95], [12]),  # a percentage is understood too
        (exercises.check_conv_parameters, [1216], [1200]),
        (
            exercises.check_output_size,
            [lambda n, k, s, p: (n + 2 * p - k) // s + 1],
            [lambda n, k, s, p: (n - k) // s + 1],
        ),
        (
            exercises.check_horizontal_edge_kernel,
            [np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])],
            [np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])],
        ),
        (exercises.check_horizontal_edge_kernel, [np.ones((3, 3))], [np.ones((3, 3))]),
        (
            exercises.check_horizontal_edge_kernel,
            [0.1 * np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]])],
            [np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]])],
        ),  # small is fine; upside down is not
        (exercises.check_conv_parameters, [1216], [1216.7]),
        (
            exercises.check_seeded_draws,
            [torch.ones(3), torch.ones(3)],
            [torch.ones(3), torch.zeros(3)],
        ),
    ],
)
def test_checks_say_yes_to_right_answers_and_no_to_wrong_ones(check, right, wrong, capsys):
    check(*right)
    verdict = _says(capsys)
    check(*wrong)
    assert _says(capsys) == "❌"
    if check is exercises.check_horizontal_edge_kernel and np.all(right[0] == 1):
        assert verdict == "❌"  # a flat kernel responds to flat images: not an edge detector
    else:
        assert verdict == "✅"


@pytest.mark.parametrize(
    "call",
    [
        lambda: exercises.check_nv_share(None),
        lambda: exercises.check_conv_parameters(...),
        lambda: exercises.check_output_size(lambda n, k, s, p: None),
        lambda: exercises.check_horizontal_edge_kernel(None),
        lambda: exercises.check_seeded_draws(None, None),
        lambda: exercises.check_patient_id(lambda name: None),
        lambda: exercises.check_leaked_lesions(None),
        lambda: exercises.check_majority_baseline(None, 0.5, [0, 1], 2),
    ],
)
def test_unanswered_exercises_say_so(call, capsys):
    call()
    assert capsys.readouterr().out.startswith("❌ Not answered yet")


def test_a_kernel_of_the_wrong_shape_is_explained(capsys):
    exercises.check_horizontal_edge_kernel(np.ones((5, 5)))
    assert "must be 3×3" in capsys.readouterr().out
