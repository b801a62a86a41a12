"""Checks for notebook 01_cnn_basics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from course_utils.exercises._check import check_function, report, unanswered


def check_output_size(fn: Callable[[int, int, int, int], int] | None) -> None:
    """Exercise: fn(size, kernel, stride, padding) gives a convolution's output size."""
    settings = [(32, 3, 1, 1), (32, 3, 2, 1), (224, 7, 2, 3), (28, 5, 1, 0), (15, 3, 2, 0)]
    cases = [
        ((n, k, s, p), nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, n, n)).shape[-1])
        for n, k, s, p in settings
    ]
    check_function(
        fn,
        cases,
        "Your formula matches torch on every case.",
        lambda args, expected, got: (
            f"For size, kernel, stride, padding = {args} torch gives {expected}, your function "
            f"{got}. Hint: (size + 2·padding − kernel) // stride + 1."
        ),
    )


def check_conv_parameters(answer: int | None) -> None:
    """Exercise: the number of learnable parameters of nn.Conv2d(3, 16, kernel_size=5)."""
    if unanswered(answer):
        return
    expected = sum(p.numel() for p in nn.Conv2d(3, 16, kernel_size=5).parameters())
    return report(
        isinstance(answer, int | np.integer) and answer == expected,
        f"{expected} = 16 filters × (3 channels × 5 × 5 weights) + 16 biases.",
        "Each of the 16 filters has one 5×5 weight per input channel, plus one bias.",
    )


def _response(image: np.ndarray, weight: torch.Tensor) -> torch.Tensor:
    """The valid convolution of a 2-D image with a 1×1×3×3 weight."""
    return nn.functional.conv2d(torch.tensor(image, dtype=torch.float32)[None, None], weight)


def check_horizontal_edge_kernel(kernel: np.ndarray | None) -> None:
    """Exercise: a 3×3 kernel that answers dark-above-bright-below edges, not vertical or flat."""
    if unanswered(kernel):
        return
    kernel = np.asarray(kernel, dtype=float)
    if kernel.shape != (3, 3):
        return report(False, "", f"The kernel must be 3×3 (got shape {kernel.shape}).")
    step = np.zeros((9, 9))
    step[5:] = 1  # dark above, bright below: a horizontal edge
    weight = torch.tensor(kernel, dtype=torch.float32).view(1, 1, 3, 3)
    edge = _response(step, weight)
    strongest = float(edge.max() if edge.max() >= -edge.min() else edge.min())
    vertical = float(_response(step.T, weight).abs().max())
    flat = float(_response(np.ones((9, 9)), weight).abs().max())
    measured = (
        f"Responses: horizontal edge {strongest:.2f}, vertical edge {vertical:.2f}, "
        f"flat {flat:.2f}."
    )
    if strongest < 0:
        return report(
            False,
            "",
            f"{measured} Your kernel answers the edge with a negative "
            "value: it looks for bright above dark. Flip its sign.",
        )
    ok = strongest > 0 and vertical <= 0.1 * strongest and flat <= 1e-6 * (1 + strongest)
    return report(
        ok,
        f"{measured} You built a Sobel-like detector.",
        f"{measured} Make the rows differ (negative on top, positive below), let every "
        "column be the same, and make the weights sum to 0.",
    )
