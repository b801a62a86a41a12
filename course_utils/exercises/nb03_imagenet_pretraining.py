"""Checks for notebook 03_imagenet_pretraining."""

from __future__ import annotations

import numpy as np
import torch
from skimage import data as skdata

from course_utils.data import ArrayDataset, resize_images
from course_utils.exercises._check import report, unanswered
from course_utils.models import build_model, imagenet_classes, input_stats


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
        "C: small and different. Train a linear classifier on codes from earlier layers; "
        "the top layers are too ImageNet-specific.",
        "Ask two questions: is 600 images small or large, and do OCT scans look like "
        "ImageNet's photographs?",
    )
