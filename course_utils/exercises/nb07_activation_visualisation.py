"""Checks for notebook 07_activation_visualisation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.exercises._check import report, unanswered
from course_utils.models import build_model
from course_utils.viz import activations, grad_cam


def _block_output(arch: str, block: str, size: int) -> torch.Size:
    """The shape of `block`'s output for one size×size input to an untrained `arch`."""
    model = build_model(arch, num_classes=2, weights=None, image_size=size)
    return activations(model, torch.zeros(1, 3, size, size), [block])[block].shape


def check_grid_predictions(side_224: int | None, side_32: int | None) -> None:
    """Exercise: predicted width of EfficientNet-Lite0's block4 output at 224 px and at 32 px."""
    if unanswered(side_224, side_32):
        return
    expected = {
        size: int(_block_output("efficientnet_lite0", "block4", size)[-1]) for size in (224, 32)
    }
    right = {224: side_224 == expected[224], 32: side_32 == expected[32]}
    report(
        all(right.values()),
        f"{expected[224]}×{expected[224]} at 224 px, {expected[32]}×{expected[32]} at 32 px: five "
        "stride-2 layers divide the side by 32. Grad-CAM works on that grid, so at 224 px each "
        "cell covers 32×32 pixels, and at 32 px (smoke) there is one cell: the map is one number, "
        "and once scaled to 0..1 it is blank. It cannot say where.",
        "Count the halvings: the stem and each of the four blocks halve the side. "
        + ", ".join(f"{size} px: {'right' if ok else 'not that'}" for size, ok in right.items()),
    )


def _reference_cam(maps: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM's weighting step on the maps' grid, as course_utils.viz.grad_cam does it."""
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * maps).sum(dim=1))
    cam = cam - cam.flatten(1).min(dim=1).values.view(-1, 1, 1)
    return cam / cam.flatten(1).max(dim=1).values.clamp_min(1e-8).view(-1, 1, 1)


def _synthetic_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Fixed (maps, grads) pairs, N×C×H×W, each testing one part of the step."""
    generator = torch.Generator().manual_seed(7)
    maps = torch.rand(2, 5, 4, 4, generator=generator)
    grads = torch.randn(2, 5, 4, 4, generator=generator) + 0.5  # some evidence in both images
    maps[1] *= 10  # the second image's evidence is ten times stronger
    negative = torch.ones(1, 3, 3, 3), -torch.ones(1, 3, 3, 3)
    corners = torch.zeros(1, 2, 2, 2)
    corners[0, 0, 0, 0] = corners[0, 1, 1, 1] = 1  # evidence for, top left; against, bottom right
    signs = torch.tensor([1.0, -1.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    return {
        "two images, one with ten times stronger maps": (maps, grads),
        "evidence for and against the class": (corners, signs),
        "every position negative before ReLU": negative,
        "a 1×1 grid (block4 at 32 px)": (maps[:, :, :1, :1], grads[:, :, :1, :1]),
    }


def _lite0_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """block4's maps and gradients for two fixed 128 px images, and viz.grad_cam's heat maps.

    The ImageNet weights (offline for Lite0): deep maps of a random-weights Lite0 are near zero.
    """
    model = build_model("efficientnet_lite0", 1000, weights="imagenet", image_size=128)
    images = torch.linspace(-2, 2, 2 * 3 * 128 * 128).reshape(2, 3, 128, 128).sin()
    store = {}
    handle = model.block4.register_forward_hook(lambda _m, _i, out: store.update(maps=out))
    try:
        logits = model.eval()(images)
        score = logits.gather(1, logits.argmax(dim=1, keepdim=True)).sum()
        (grads,) = torch.autograd.grad(score, store["maps"])
    finally:
        handle.remove()
    return images, store["maps"].detach(), grads, grad_cam(model, images, "block4")


def _cam_hint(case: str, got: torch.Tensor, expected: torch.Tensor) -> str:
    """What a map that differs from the expected one probably got wrong."""
    if got.shape != expected.shape:
        return (
            f"{case}: shape {tuple(got.shape)}, not {tuple(expected.shape)}: one H×W map per image."
        )
    if torch.isnan(got).any():
        return (
            f"{case}: NaN. A map that is zero everywhere after ReLU must stay zero: "
            "divide by max(…, 1e-8)."
        )
    if case.startswith("evidence for"):
        return (
            f"{case}: a position whose weighted sum is negative holds evidence against the class: "
            "ReLU clips it to 0 before the map is scaled."
        )
    if case.startswith("two images"):
        return (
            f"{case}: weight each map by its gradient averaged over H and W, sum over channels, "
            "ReLU, then scale EACH image's map to 0..1 on its own."
        )
    return (
        f"{case}: not the expected map. Average the gradients over space (dims 2, 3), weight, "
        "sum over channels, ReLU, subtract each map's min, divide by its max."
    )


def check_cam_weighting(fn: Callable[[torch.Tensor, torch.Tensor], object] | None) -> None:
    """Exercise: Grad-CAM's weighting step, against the course's on fixed maps and a fixed model."""
    if unanswered(fn):
        return
    for case, (maps, grads) in _synthetic_cases().items():
        got = fn(maps.clone(), grads.clone())
        if unanswered(got):
            return
        got, expected = torch.as_tensor(got).float(), _reference_cam(maps, grads)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5):
            return report(False, "", _cam_hint(case, got, expected))
    images, maps, grads, course = _lite0_case()
    got = torch.as_tensor(fn(maps.clone(), grads.clone())).float()
    upsampled = F.interpolate(got[:, None], size=images.shape[-2:], mode="bilinear")[:, 0]
    upsampled = upsampled - upsampled.flatten(1).min(dim=1).values.view(-1, 1, 1)
    upsampled = upsampled / upsampled.flatten(1).max(dim=1).values.clamp_min(1e-8).view(-1, 1, 1)
    if not np.allclose(upsampled.numpy(), course, atol=1e-4):
        return report(
            False, "", _cam_hint("EfficientNet-Lite0, block4", got, _reference_cam(maps, grads))
        )
    report(
        True,
        "Your step, upsampled to the image, gives course_utils.viz.grad_cam's maps for "
        "EfficientNet-Lite0 (block4). An all-negative map stays zero, and each image is scaled "
        "on its own: strong and weak evidence look alike, so compare maps by shape, not colour.",
        "",
    )
