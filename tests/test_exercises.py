import numpy as np
import pytest
import torch

from course_utils import exercises, metrics
from course_utils.config import get_profile


def _says(capsys) -> str:
    return capsys.readouterr().out.strip()[0]


@pytest.mark.parametrize(
    ("check", "right", "wrong"),
    [
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
        lambda: exercises.check_conv_parameters(...),
        lambda: exercises.check_output_size(lambda n, k, s, p: None),
        lambda: exercises.check_horizontal_edge_kernel(None),
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


@pytest.mark.parametrize(
    ("call", "verdict"),
    [
        (lambda: exercises.check_scenario("c"), "✅"),
        (lambda: exercises.check_scenario("A"), "❌"),
        (lambda: exercises.check_sensitivity(lambda y, p: (p[y == 1] == 1).mean()), "✅"),
        (lambda: exercises.check_sensitivity(lambda y, p: (p == 1).mean()), "❌"),
    ],
)
def test_later_notebooks_checks(call, verdict, capsys):
    call()
    assert _says(capsys) == verdict


def test_trainable_parameters_of_the_first_block(capsys):
    head = (512 * 1 * 1 * 256 + 256) + (256 * 128 + 128) + (128 * 7 + 7)  # seed head at 32 px
    block1 = (3 * 64 * 9 + 64) + (64 * 64 * 9 + 64)
    exercises.check_trainable_parameters(
        block1 + head, trainable=("block1",), classes=7, profile=get_profile()
    )
    exercises.check_trainable_parameters(
        block1, trainable=("block1",), classes=7, profile=get_profile()
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✅") and out[1].startswith("❌")


def test_astronaut_check_agrees_with_the_model(capsys):
    from skimage import data as skdata

    from course_utils.data import ArrayDataset, resize_images
    from course_utils.models import build_model, imagenet_classes, input_stats

    photo = skdata.astronaut()  # 512×512 already square
    images, _ = ArrayDataset(
        resize_images(photo[None], 224), np.zeros(1), *input_stats("efficientnet_lite0")
    )[[0]]
    with torch.no_grad():
        top1 = imagenet_classes()[
            int(
                build_model("efficientnet_lite0", 1000, profile=get_profile())
                .eval()(images)
                .argmax()
            )
        ]
    exercises.check_astronaut(top1)
    exercises.check_astronaut("tabby")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✅") and out[1].startswith("❌")


def unweighted_ece(probs, labels, bins):
    table = metrics.reliability(probs, labels, bins)
    return float((table["confidence"] - table["accuracy"]).abs().mean())


@pytest.mark.parametrize(
    ("call", "verdict"),
    [
        (lambda: exercises.check_threshold(0.7, [1, 1, 1, 0], [0.9, 0.7, 0.2, 0.8], 0.6), "✅"),
        (lambda: exercises.check_threshold(0.2, [1, 1, 1, 0], [0.9, 0.7, 0.2, 0.8], 0.6), "❌"),
        (lambda: exercises.check_ece(metrics.expected_calibration_error), "✅"),
        (lambda: exercises.check_ece(unweighted_ece), "❌"),
    ],
)
def test_notebook_08_checks(call, verdict, capsys):
    call()
    assert _says(capsys) == verdict


def test_notebook_10_checks(capsys):
    exercises.check_small_data_rule([])
    exercises.check_small_data_rule(["block4"])
    exercises.check_small_data_rule("head")
    verdicts = [line[0] for line in capsys.readouterr().out.splitlines()]
    assert verdicts == ["✅", "❌", "✅"]


def test_check_ece_calls_the_learners_function_once_per_case(capsys):
    calls = []

    def counted(probs, labels, bins):
        calls.append(bins)
        return metrics.expected_calibration_error(probs, labels, bins)

    exercises.check_ece(counted)
    assert _says(capsys) == "✅"
    assert calls == [5, 10, 4]  # the three cases (2, 3 and 7 classes), each exactly once
    calls.clear()
    exercises.check_ece(lambda probs, labels, bins: counted(probs, labels, bins) + 1)
    assert _says(capsys) == "❌"
    assert calls == [5]  # stops at the first wrong case, having called it once


def test_a_strategy_is_chosen_on_validation_not_on_test(capsys):
    from types import SimpleNamespace

    labels = np.array([0, 1, 0, 1])
    right, wrong = np.eye(2)[labels], np.eye(2)[1 - labels]

    def run(val: float, probs: np.ndarray) -> SimpleNamespace:
        history = SimpleNamespace(best={"val_macro_f1": val}, epochs=[{"epoch": 1}])
        return SimpleNamespace(history=history, labels=labels, probs=probs, info={})

    runs = {"all layers": run(0.6, wrong), "last block": run(0.4, right)}
    exercises.check_chosen_on_validation("all layers", runs)  # best on validation
    assert _says(capsys) == "✅"
    exercises.check_chosen_on_validation("last block", runs)  # best on test only
    out = capsys.readouterr().out
    assert out.startswith("❌") and "best on the test table, not on validation" in out


def test_a_hand_written_strategy_setup_is_checked_by_what_learns(capsys):
    def right(model, trainable, lr):
        for name, block in model.named_children():
            block.requires_grad_(name in trainable or name == "head")
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)

    def all_parameters(model, trainable, lr):  # freezes, but hands the optimiser everything
        right(model, trainable, lr)
        return torch.optim.Adam(model.parameters(), lr=lr)

    exercises.check_strategy_setup(right)
    assert _says(capsys) == "✅"
    exercises.check_strategy_setup(all_parameters)
    assert _says(capsys) == "❌"
