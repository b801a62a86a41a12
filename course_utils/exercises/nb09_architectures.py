"""Checks for notebook 09_architectures."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils.exercises._check import check_function, report, unanswered
from course_utils.models import build_model, count_parameters


@functools.cache
def architecture_cost(arch: str, classes: int = 7, size: int = 224) -> tuple[int, int]:
    """(parameters, FLOPs of one size × size image) of `arch`, built on the meta device (fast)."""
    with torch.device("meta"):
        model = build_model(arch, classes, weights=None, image_size=size).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size, device="meta"))
    return count_parameters(model), int(counter.get_total_flops())


def check_bigger(
    more_parameters: str | None, more_flops: str | None, pair: tuple[str, str]
) -> None:
    """Exercise (predict first): which of `pair` has more parameters, and which more FLOPs."""
    if unanswered(more_parameters, more_flops):
        return
    if more_parameters not in pair or more_flops not in pair:
        return report(False, "", f"Answer with one of {pair[0]!r} and {pair[1]!r}, twice.")
    params = {arch: architecture_cost(arch)[0] for arch in pair}
    flops = {arch: architecture_cost(arch)[1] for arch in pair}
    facts = ", ".join(
        f"{arch}: {params[arch] / 1e6:.1f} M parameters, {flops[arch] / 1e9:.1f} GFLOPs"
        for arch in pair
    )
    right = (more_parameters == max(pair, key=params.get), more_flops == max(pair, key=flops.get))
    report(
        all(right),
        f"Both right ({facts}): parameters and computation are different costs.",
        f"{'Parameters right' if right[0] else 'Parameters wrong'}, "
        f"{'FLOPs right' if right[1] else 'FLOPs wrong'} ({facts}). A weight is stored once but "
        "used at every position of its feature map: the larger the maps, the more it costs.",
    )


def _conv_cases() -> list[tuple[tuple[nn.Conv2d, int, int], int]]:
    """Conv2d layers with an input height and width, and their MACs by torch's FLOP counter."""
    layers = [
        (nn.Conv2d(3, 64, 3, padding=1), 32, 32),  # VGG's first layer on a small image
        (nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), 224, 224),  # ResNet's stem
        (nn.Conv2d(64, 128, 3, stride=2, padding=1), 31, 31),  # odd side: the floor matters
        (nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32), 28, 28),  # depthwise (MobileNet)
        (nn.Conv2d(64, 128, (1, 3), padding=(0, 1), groups=4, bias=False), 15, 17),
        (nn.Conv2d(16, 8, 3, dilation=2), 20, 20),  # no padding, dilated
        (nn.Conv2d(256, 64, 1), 14, 14),  # a 1 × 1 bottleneck
    ]
    cases = []
    for layer, height, width in layers:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            layer(torch.zeros(1, layer.in_channels, height, width))
        cases.append(((layer, height, width), counter.get_total_flops() // 2))
    return cases


def _conv_hint(args: tuple, expected: int, got: object) -> str:
    """Why a learner's MAC count of one case may be off, from that layer's settings."""
    layer, height, width = args
    hint = f"{layer} on a {height} × {width} input: expected {expected:,}, got {got!r}."
    if isinstance(got, int | float) and got == 2 * expected:
        return f"{hint} That is the FLOPs: a multiply-accumulate counts once."
    if layer.groups > 1:
        return f"{hint} With groups, each output channel sees in_channels / groups inputs."
    return (
        f"{hint} Output side = (side + 2·padding − dilation·(kernel − 1) − 1) // stride + 1; "
        "MACs = out_h · out_w · out_channels · (in_channels / groups) · kernel_h · kernel_w."
    )


def check_conv_macs(fn: Callable[[nn.Conv2d, int, int], int] | None) -> None:
    """Exercise: fn(layer, height, width) counts a Conv2d layer's multiply-accumulates (batch 1)."""
    if unanswered(fn):
        return

    def counted(*args: object) -> object:
        """The learner's count for one case, as an int where it is a whole number."""
        got = fn(*args)
        whole = isinstance(got, int | float) and float(got).is_integer()
        return int(got) if whole else got

    check_function(
        counted,
        _conv_cases(),
        "Your count matches torch's FLOP counter (÷ 2) on seven layers, strides, groups and all.",
        _conv_hint,
    )
