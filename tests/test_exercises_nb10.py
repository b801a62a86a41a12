"""Notebook 10's checks: the learner's parameter groups and class weights against the course's."""

import numpy as np
import pytest
import torch

from course_utils.exercises.nb10_finetuning_recipes import (
    check_class_weights,
    check_param_groups,
    check_small_data_rule,
)


def _verdicts(capsys) -> list[str]:
    return [line[0] for line in capsys.readouterr().out.splitlines()]


def right_groups(model, lr, pretrained_factor):
    head = [p for p in model.head.parameters() if p.requires_grad]
    body = [
        p
        for name, block in model.named_children()
        if name != "head"
        for p in block.parameters()
        if p.requires_grad
    ]
    return [{"params": head, "lr": lr}, {"params": body, "lr": lr * pretrained_factor}]


def per_block_groups(model, lr, pretrained_factor):
    """Also right: one group per block, frozen ones left out, generators as Adam accepts them."""
    return [
        {"params": block.parameters(), "lr": lr if name == "head" else lr * pretrained_factor}
        for name, block in model.named_children()
        if any(p.requires_grad for p in block.parameters())
    ]


def with_frozen(model, lr, pretrained_factor):
    body = [p for name, b in model.named_children() if name != "head" for p in b.parameters()]
    return [{"params": model.head.parameters(), "lr": lr}, {"params": body, "lr": lr * 0.1}]


def swapped(model, lr, pretrained_factor):
    groups = right_groups(model, lr, pretrained_factor)
    groups[0]["lr"], groups[1]["lr"] = lr * pretrained_factor, lr
    return groups


def one_rate(model, lr, pretrained_factor):
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]


def head_only(model, lr, pretrained_factor):
    return [{"params": list(model.head.parameters()), "lr": lr}]


def no_rates(model, lr, pretrained_factor):
    return [{"params": [p for p in model.parameters() if p.requires_grad]}]


def twice(model, lr, pretrained_factor):
    groups = right_groups(model, lr, pretrained_factor)
    return groups + [{"params": groups[0]["params"], "lr": lr}]


def test_the_right_param_groups_pass_in_either_layout(capsys):
    check_param_groups(right_groups)
    check_param_groups(per_block_groups)
    out = capsys.readouterr().out
    assert out.count("✅") == 2 and "❌" not in out


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (with_frozen, "do not learn"),
        (swapped, "expected"),
        (one_rate, "lr × factor"),
        (head_only, "miss"),
        (no_rates, "its own 'lr'"),
        (twice, "two groups"),
        (lambda model, lr, factor: model.parameters(), "list of dicts"),
    ],
)
def test_typical_wrong_param_groups_fail_with_a_hint(capsys, wrong, hint):
    check_param_groups(wrong)
    out = capsys.readouterr().out
    assert out.startswith("❌") and hint in out


def test_unanswered_param_groups_say_so(capsys):
    check_param_groups(None)
    check_param_groups(lambda model, lr, factor: None)  # the cell's `...` body returns None
    out = capsys.readouterr().out
    assert out.count("Not answered") == 2


def right_weights(labels, num_classes):
    counts = np.bincount(labels, minlength=num_classes)
    return len(labels) / (num_classes * np.maximum(counts, 1))


def test_the_right_class_weights_pass_as_array_or_tensor(capsys):
    check_class_weights(right_weights)
    check_class_weights(lambda y, k: torch.tensor(right_weights(y, k), dtype=torch.float32))
    check_class_weights(lambda y, k: right_weights(y, k).tolist())
    assert _verdicts(capsys) == ["✅"] * 3


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda y, k: 1 / np.maximum(np.bincount(y, minlength=k), 1), "scale"),
        (lambda y, k: len(y) / (k * np.bincount(y, minlength=k)), "divide by zero"),
        (lambda y, k: len(y) / (k * np.unique(y, return_counts=True)[1]), "one per class"),
        (lambda y, k: np.bincount(y, minlength=k) / len(y), "expected"),
        (lambda y, k: np.ones(k), "expected"),
        (lambda y, k: "weights", "one number per class"),
    ],
)
def test_typical_wrong_class_weights_fail_with_a_hint(capsys, wrong, hint):
    with np.errstate(divide="ignore"):
        check_class_weights(wrong)
    out = capsys.readouterr().out
    assert out.startswith("❌") and hint in out, out


def test_unanswered_class_weights_say_so(capsys):
    check_class_weights(None)
    check_class_weights(lambda labels, num_classes: None)
    assert capsys.readouterr().out.count("Not answered") == 2


def test_the_small_data_rule_agrees_with_notebook_03(capsys):
    check_small_data_rule([])
    check_small_data_rule(["block4"])
    check_small_data_rule(None)
    out = capsys.readouterr().out
    assert [line[0] for line in out.splitlines()] == ["✅", "❌", "❌"]
    assert "linear classifier on frozen features" in out and "Not answered" in out
