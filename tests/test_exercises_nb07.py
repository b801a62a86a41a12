"""The checks of notebook 07: the Grad-CAM grid, predicted; Grad-CAM's weighting step, written."""

import pytest
import torch

from course_utils.exercises.nb07_activation_visualisation import (
    check_cam_weighting,
    check_grid_predictions,
)


def _says(capsys) -> str:
    return capsys.readouterr().out.strip()


def test_grid_right(capsys):
    check_grid_predictions(7, 1)
    assert _says(capsys).startswith("✅ 7×7 at 224 px, 1×1 at 32 px")


@pytest.mark.parametrize(
    ("answers", "said"), [((7, 2), "32 px: not that"), ((14, 1), "224 px: not")]
)
def test_grid_wrong(capsys, answers, said):
    check_grid_predictions(*answers)
    out = _says(capsys)
    assert out.startswith("❌") and said in out


def test_grid_unanswered(capsys):
    check_grid_predictions(7, None)
    assert "Not answered" in _says(capsys)


def _scale(cam, each=True, safe=True):
    low = cam.amin(dim=(1, 2), keepdim=True) if each else cam.min()
    cam = cam - low
    high = cam.amax(dim=(1, 2), keepdim=True) if each else cam.max()
    return cam / (high.clamp_min(1e-8) if safe else high)


def _right(maps, grads):
    return _scale(torch.relu((grads.mean(dim=(2, 3), keepdim=True) * maps).sum(dim=1)))


def test_cam_right(capsys):
    check_cam_weighting(_right)
    assert _says(capsys).startswith("✅")


def test_cam_right_as_numpy(capsys):
    check_cam_weighting(lambda maps, grads: _right(maps, grads).numpy())
    assert _says(capsys).startswith("✅")


WEIGHTS = {"keepdim": True, "dim": (2, 3)}
WRONG = {
    "no ReLU": (lambda m, g: _scale((g.mean(**WEIGHTS) * m).sum(dim=1)), "ReLU"),
    "0/0": (lambda m, g: _scale(torch.relu((g.mean(**WEIGHTS) * m).sum(1)), safe=False), "NaN"),
    "one scale": (lambda m, g: _scale(torch.relu((g.mean(**WEIGHTS) * m).sum(1)), False), "EACH"),
    "gradient × map": (lambda m, g: _scale(torch.relu((g * m).sum(dim=1))), "EACH"),
    "weights per position": (lambda m, g: _scale(torch.relu((g.mean(1, True) * m).sum(1))), ""),
    "not scaled": (lambda m, g: torch.relu((g.mean(**WEIGHTS) * m).sum(dim=1)), ""),
    "channels kept": (lambda m, g: torch.relu(g.mean(**WEIGHTS) * m), "shape"),
}


@pytest.mark.parametrize("wrong", WRONG, ids=list(WRONG))
def test_cam_wrong(capsys, wrong):
    fn, hint = WRONG[wrong]
    check_cam_weighting(fn)
    out = _says(capsys)
    assert out.startswith("❌") and hint in out


@pytest.mark.parametrize("fn", [None, lambda maps, grads: None])
def test_cam_unanswered(capsys, fn):
    check_cam_weighting(fn)
    assert "Not answered" in _says(capsys)
