"""The checks of notebook 09's exercises: right answers pass, typical wrong ones fail."""

from __future__ import annotations

import pytest
from torch import nn

from course_utils.exercises.nb09_architectures import check_bigger, check_conv_macs

PAIR = ("vgg16", "resnet50")  # 14.7 M vs 23.5 M parameters; 30.9 vs 8.2 GFLOPs at 224 px


def _side(layer: nn.Conv2d, side: int, axis: int) -> int:
    span = layer.dilation[axis] * (layer.kernel_size[axis] - 1) + 1
    return (side + 2 * layer.padding[axis] - span) // layer.stride[axis] + 1


def conv_macs(layer: nn.Conv2d, height: int, width: int) -> int:
    """The right answer, written the way the solution writes it."""
    out = _side(layer, height, 0) * _side(layer, width, 1) * layer.out_channels
    return out * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]


def ignores_groups(layer: nn.Conv2d, height: int, width: int) -> int:
    return conv_macs(layer, height, width) * layer.groups


def ignores_stride(layer: nn.Conv2d, height: int, width: int) -> int:
    per_position = layer.out_channels * layer.in_channels // layer.groups
    return height * width * per_position * layer.kernel_size[0] * layer.kernel_size[1]


def counts_flops(layer: nn.Conv2d, height: int, width: int) -> int:
    return 2 * conv_macs(layer, height, width)


def adds_bias(layer: nn.Conv2d, height: int, width: int) -> int:
    extra = _side(layer, height, 0) * _side(layer, width, 1) * layer.out_channels
    return conv_macs(layer, height, width) + (extra if layer.bias is not None else 0)


def test_the_right_conv_count_passes(capsys):
    check_conv_macs(conv_macs)
    assert capsys.readouterr().out.startswith("✅")


def test_a_float_with_a_whole_value_passes(capsys):
    check_conv_macs(lambda *args: float(conv_macs(*args)))
    assert capsys.readouterr().out.startswith("✅")


@pytest.mark.parametrize("wrong", [ignores_groups, ignores_stride, counts_flops, adds_bias])
def test_typical_wrong_conv_counts_fail(capsys, wrong):
    check_conv_macs(wrong)
    assert capsys.readouterr().out.startswith("❌")


def test_flops_instead_of_macs_are_named(capsys):
    check_conv_macs(counts_flops)
    assert "FLOPs" in capsys.readouterr().out


def test_ignoring_groups_gets_the_groups_hint(capsys):
    check_conv_macs(ignores_groups)
    assert "groups" in capsys.readouterr().out


@pytest.mark.parametrize("unfinished", [None, ..., lambda layer, height, width: None])
def test_an_unwritten_conv_count_is_not_answered(capsys, unfinished):
    check_conv_macs(unfinished)
    assert "Not answered" in capsys.readouterr().out


def test_the_right_prediction_passes(capsys):
    check_bigger("resnet50", "vgg16", PAIR)
    assert capsys.readouterr().out.startswith("✅")


@pytest.mark.parametrize(
    "answers", [("vgg16", "vgg16"), ("resnet50", "resnet50"), ("vgg16", "resnet50")]
)
def test_wrong_predictions_fail(capsys, answers):
    check_bigger(*answers, PAIR)
    assert capsys.readouterr().out.startswith("❌")


def test_a_half_right_prediction_says_which_half(capsys):
    check_bigger("resnet50", "resnet50", PAIR)
    out = capsys.readouterr().out
    assert "Parameters right" in out and "FLOPs wrong" in out


def test_a_name_outside_the_pair_is_refused(capsys):
    check_bigger("densenet121", "vgg16", PAIR)
    assert "one of 'vgg16' and 'resnet50'" in capsys.readouterr().out


@pytest.mark.parametrize("answers", [(None, "vgg16"), ("resnet50", None), (..., ...)])
def test_an_unmade_prediction_is_not_answered(capsys, answers):
    check_bigger(*answers, PAIR)
    assert "Not answered" in capsys.readouterr().out
