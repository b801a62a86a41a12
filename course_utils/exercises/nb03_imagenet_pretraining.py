"""Checks for notebook 03_imagenet_pretraining."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from skimage import data as skdata
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.data import ArrayDataset, resize_images
from course_utils.exercises._check import report, unanswered
from course_utils.models import build_model, imagenet_classes, input_stats
from course_utils.train import cnn_codes


def check_astronaut(answer: str | None) -> None:
    """Exercise: EfficientNet-Lite0's top-1 ImageNet category for skimage's astronaut photo."""
    if unanswered(answer):
        return
    photo = skdata.astronaut()
    side = min(photo.shape[:2])
    left = (photo.shape[1] - side) // 2
    square = resize_images(photo[None, :side, left : left + side], 224)
    model = build_model("efficientnet_lite0", num_classes=1000, image_size=224).eval()
    images, _ = ArrayDataset(square, np.zeros(1), *input_stats("efficientnet_lite0"))[[0]]
    with torch.no_grad():
        expected = imagenet_classes()[int(model(images).argmax())]
    report(
        str(answer).strip().lower() == expected.lower(),
        f"{expected!r}: ImageNet has no "
        "'person' class, so the network names the nearest thing it knows.",
        "Not what the model says. Crop the centre square, resize to 224 px, normalise with "
        "input_stats('efficientnet_lite0'), and take the argmax of the logits.",
    )


def check_scenario(answer: str | None) -> None:
    """Exercise: the transfer scenario for 600 retinal OCT scans (small, unlike ImageNet)."""
    if unanswered(answer):
        return
    report(
        str(answer).strip().upper() == "C",
        "C: small and different. The small-data rule: only a linear classifier learns, on "
        "frozen codes from an earlier block (the top blocks are too ImageNet-specific).",
        "Ask two questions: is 600 images small or large, and do OCT scans look like "
        "ImageNet's photographs?",
    )


def _photo_batch(size: int) -> torch.Tensor:
    photos = [skdata.chelsea(), skdata.coffee(), skdata.rocket()]
    squares = np.stack(
        [resize_images(p[None, : min(p.shape[:2]), : min(p.shape[:2])], size)[0] for p in photos]
    )
    images, _ = ArrayDataset(squares, np.zeros(len(squares)), *input_stats("efficientnet_lite0"))[
        list(range(len(squares)))
    ]
    return images


def check_cnn_code(fn: Callable[[nn.Sequential, torch.Tensor], object] | None) -> None:
    """Exercise: fn(model, images) gives each image's CNN code, as cnn_codes does."""
    if unanswered(fn):
        return
    model = build_model("efficientnet_lite0", num_classes=7, image_size=64)
    for size in (32, 64):
        images = _photo_batch(size)
        batches = DataLoader(TensorDataset(images, torch.zeros(len(images))))
        expected, _ = cnn_codes(model, batches, device=torch.device("cpu"))
        model.train()  # as a network is left after training: the code must not depend on it
        got = fn(model, images.clone())
        if unanswered(got):
            return
        got = torch.as_tensor(got).detach().float().cpu().numpy()
        if got.shape != expected.shape:
            return report(
                False,
                "",
                f"At {size} px the codes should be {expected.shape} "
                f"(images × channels), not {got.shape}: average over both positions.",
            )
        if not np.allclose(got, expected, atol=1e-4):
            return report(
                False,
                "",
                "Shapes match, values do not. Is the network in evaluation "
                "mode (.eval(): BatchNorm uses its running statistics), is the head left "
                "out (model[:-1]), and is each map averaged over height and width?",
            )
    report(
        True,
        "Your codes equal cnn_codes' at 32 and 64 px: the feature extractor in four "
        "lines, whatever the image size.",
        "",
    )
