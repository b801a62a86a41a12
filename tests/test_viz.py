import numpy as np
import pandas as pd
import pytest
import torch
from skimage import data as skdata
from sklearn.metrics import roc_curve

from course_utils import errors, metrics, viz, widgets
from course_utils.config import get_profile
from course_utils.data import ArrayDataset, resize_images
from course_utils.models import build_model, input_stats

LITE = build_model("efficientnet_lite0", 1000, profile=get_profile("smoke")).eval()
MEAN, STD = input_stats("efficientnet_lite0")


def _batch(images: np.ndarray) -> torch.Tensor:
    return ArrayDataset(images, np.zeros(len(images)), MEAN, STD)[list(range(len(images)))][0]


def _cat_at(left: int) -> np.ndarray:
    """A 224 px grey canvas with chelsea's face (112 px) pasted `left` pixels from the left."""
    face = resize_images(skdata.chelsea()[None, 20:250, 100:330], 112)[0]
    canvas = np.full((224, 224, 3), 128, np.uint8)
    canvas[56:168, left : left + 112] = face
    return canvas


def test_activations_come_from_hooks_that_are_removed():
    images = _batch(np.stack([_cat_at(0), _cat_at(112)]))
    maps = viz.activations(LITE, images, ["stem", "block2", "block4.0"])
    assert maps["stem"].shape[:2] == (2, 16) and maps["stem"].shape[-1] == 112
    assert maps["block2"].shape[-1] == 28 and maps["block4.0"].shape[-1] == 7
    assert all(not m._forward_hooks for m in LITE.modules())
    with torch.no_grad():
        torch.testing.assert_close(maps["block2"], LITE[:3](images))


def test_unknown_layers_name_the_blocks():
    with pytest.raises(ValueError, match="stem, block1, block2, block3, block4, head"):
        viz.activations(LITE, torch.zeros(1, 3, 32, 32), ["layer4"])


def _centre_x(cam: np.ndarray) -> float:
    columns = cam.sum(axis=0)
    return float((columns * np.arange(len(columns))).sum() / columns.sum()) / len(columns)


def test_grad_cam_follows_the_cat_when_it_moves():
    cams = viz.grad_cam(LITE, _batch(np.stack([_cat_at(0), _cat_at(112)])), "block4", target=281)
    assert cams.shape == (2, 224, 224) and cams.min() >= 0 and cams.max() == pytest.approx(1)
    assert _centre_x(cams[0]) < 0.45 < 0.55 < _centre_x(cams[1])
    assert all(not m._forward_hooks for m in LITE.modules())


def test_grad_cam_agrees_with_pytorch_grad_cam():
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    images = _batch(np.stack([_cat_at(30)]))
    ours = viz.grad_cam(LITE, images, "block4", target=281)[0]
    with GradCAM(model=LITE, target_layers=[LITE.block4]) as reference:
        theirs = reference(input_tensor=images, targets=[ClassifierOutputTarget(281)])[0]
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.95


def test_overlay_keeps_shape_and_type():
    blended = viz.overlay(np.zeros((8, 8), np.uint8), np.ones((8, 8)))
    assert blended.shape == (8, 8, 3) and blended.dtype == np.uint8 and blended[..., 0].min() > 0


def test_reliability_and_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    table = metrics.reliability(probs, labels, bins=5)
    assert table["count"].sum() == 4 and list(table.index) == ["0.60-0.80", "0.80-1.00"]
    # bin 0.6-0.8: confidences .7 and .6, both right; bin 0.8-1.0: .9 right, .8 wrong
    assert metrics.expected_calibration_error(probs, labels, bins=5) == pytest.approx(
        (2 * abs(0.65 - 1.0) + 2 * abs(0.85 - 0.5)) / 4
    )


def test_threshold_reaches_the_sensitivity_and_matches_the_roc():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.clip(labels * 0.3 + rng.random(300) * 0.7, 0, 1)
    threshold = metrics.threshold_for_sensitivity(labels, scores, 0.95)
    sensitivity, _ = metrics.sensitivity_specificity(labels, (scores >= threshold).astype(int))
    assert sensitivity >= 0.95
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    best = thresholds[np.argmax(tpr >= 0.95)]  # sklearn: the highest threshold reaching it
    assert threshold == pytest.approx(best)


def test_mistakes_and_label_error_candidates():
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.2, 0.8], [0.1, 0.9]])
    labels = np.array([1, 1, 1, 0])
    table = errors.mistakes(probs, labels, ["normal", "pneumonia"])
    assert list(table["index"]) == [0, 3, 1] and table.loc[0, "true"] == "pneumonia"
    assert list(errors.likely_label_errors(probs, labels, confidence=0.9)) == [0, 3]


def test_near_duplicates_by_cosine_similarity():
    codes = np.array([[1.0, 0.0], [0.99, 0.01], [0.0, 1.0], [2.0, 0.0]])
    pairs = errors.near_duplicates(codes, threshold=0.98)
    assert set(map(tuple, pairs[["first", "second"]].to_numpy())) == {(0, 1), (0, 3), (1, 3)}


def test_widgets_build_and_redraw():
    images = np.zeros((3, 8, 8), np.uint8)
    maps = {"block1": torch.rand(3, 4, 4, 4), "block2": torch.rand(3, 2, 2, 2)}
    explorer = widgets.activation_explorer(images, maps)
    controls = explorer.children[0].children
    controls[1].value = "block2"
    assert controls[2].max == 1
    table = errors.mistakes(np.eye(2)[[1, 1, 0]], np.array([0, 1, 1]), ["a", "b"])
    gallery = widgets.mistake_gallery(images, table, per_page=1)
    gallery.children[0].value = 2
    assert gallery.children[0].max == 2 and isinstance(table, pd.DataFrame)


def test_grad_cam_leaves_parameter_gradients_alone_and_chunks_agree():
    LITE.zero_grad(set_to_none=True)
    viz.grad_cam(LITE, _batch(np.stack([_cat_at(0)])), "block4")
    assert all(p.grad is None for p in LITE.parameters())
    codes = np.random.default_rng(0).normal(size=(50, 4))
    codes[7] = codes[3] * 2  # same direction
    whole, chunked = (
        errors.near_duplicates(codes, 0.99, chunk=1000),
        errors.near_duplicates(codes, 0.99, chunk=7),
    )
    assert whole.equals(chunked) and (3, 7) in set(
        map(tuple, whole[["first", "second"]].to_numpy())
    )


def test_threshold_is_exact_where_floating_point_is_not():
    labels = np.ones(100, dtype=int)
    scores = np.linspace(1, 0.01, 100)
    assert metrics.threshold_for_sensitivity(labels, scores, 0.55) == pytest.approx(scores[54])
