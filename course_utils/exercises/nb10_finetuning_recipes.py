"""Checks for notebook 10_finetuning_recipes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from course_utils.exercises._check import held_tensors, report, unanswered
from course_utils.models import build_model, freeze
from course_utils.train import class_weights, param_groups

# (blocks that learn besides the head, lr, pretrained_factor): one fresh model per case.
GROUP_CASES = (
    (("block4",), 1e-3, 0.1),
    ((), 3e-4, 0.5),
    (("stem", "block1", "block2", "block3", "block4"), 1e-3, 0.01),
    (("stem", "block2"), 2e-3, 0.25),
)

# (labels, num_classes) for check_class_weights; the second and last miss classes.
WEIGHT_CASES = (
    (np.array([0, 0, 0, 0, 1, 1, 2]), 3),
    (np.array([0, 0, 1, 1, 1, 1]), 3),
    (np.repeat(np.arange(7), [67, 11, 5, 3, 1, 11, 2]), 7),
    (np.array([2, 2, 2, 0]), 4),
)


def check_small_data_rule(answer: list[str] | str | None) -> None:
    """Exercise: the blocks to unfreeze for 600 images (none: only the head, the last layer)."""
    if unanswered(answer):
        return
    names = {answer} if isinstance(answer, str) else set(answer)
    report(
        names <= {"head"},
        "Right: freeze(model, trainable=[]) leaves only the head, a linear classifier on frozen "
        "features, learning. Dermoscopy is unlike ImageNet's photographs, so notebook 03's "
        "scenario C would take the features from an earlier block (truncate the network there): "
        "still no block learns.",
        "With fewer than about 1,000 labelled images, train only a linear classifier on frozen "
        "features: no block learns. freeze() always keeps the head trainable, so none needs "
        "naming.",
    )


def _groups_or_problem(groups: object) -> list[tuple[list, float]] | str:
    """The non-empty (parameters, lr) pairs of an Adam-style group list, or what is wrong."""
    if not isinstance(groups, list | tuple) or not all(isinstance(g, dict) for g in groups):
        return "return a list of dicts, each {'params': [...], 'lr': ...}, as Adam takes them"
    pairs = []
    for group in groups:
        if "params" not in group or "lr" not in group:
            return "every group needs its 'params' and its own 'lr'"
        params = list(group["params"])
        if params:
            pairs.append((params, group["lr"]))
    return pairs


def _rate_problem(model: nn.Module, pairs: list, expected: list[dict]) -> str | None:
    """What is wrong with which tensors the groups hold, or with their rates, or None."""
    names = {id(p): name for name, p in model.named_parameters()}
    twice, frozen, missing = held_tensors(model, [id(p) for params, _ in pairs for p in params])
    if twice:
        return "a tensor sits in two groups (or twice in one): each belongs to one group"
    if frozen:
        return (
            f"the groups hold {len(frozen)} tensors that do not learn (e.g. {frozen[0]}): leave "
            f"frozen blocks out (requires_grad is False)"
        )
    if missing:
        return f"the groups miss {len(missing)} tensors that learn (e.g. {missing[0]})"
    want = {id(p): group["lr"] for group in expected for p in group["params"]}
    for params, lr in pairs:
        for p in params:
            if not np.isclose(lr, want[id(p)], rtol=1e-9, atol=0):
                block = names[id(p)].split(".")[0]
                role = (
                    "the head gets lr" if block == "head" else "a pretrained block gets lr × factor"
                )
                return f"{block} has lr {lr:g}, expected {want[id(p)]:g} ({role})"
    return None


def check_param_groups(fn: Callable[[nn.Module, float, float], list[dict]] | None) -> None:
    """Exercise: fn(model, lr, pretrained_factor) gives the groups course_utils.param_groups does.

    Compared on fresh EfficientNet-Lite0 models (random weights, 32 px), several freezings:
    the same tensors at the same rates (empty groups are ignored), and Adam must accept them.
    """
    if unanswered(fn):
        return
    for trainable, lr, factor in GROUP_CASES:
        model = freeze(build_model("efficientnet_lite0", 7, weights=None, image_size=32), trainable)
        groups = fn(model, lr, factor)
        if unanswered(groups):
            return
        pairs = _groups_or_problem(groups)
        problem = pairs if isinstance(pairs, str) else None
        problem = problem or _rate_problem(model, pairs, param_groups(model, lr, factor))
        if problem is None:
            try:
                torch.optim.Adam([{"params": params, "lr": rate} for params, rate in pairs])
            except (TypeError, ValueError) as err:
                problem = f"Adam does not take these groups: {err}"
        if problem:
            where = f"trainable={list(trainable)}, lr={lr:g}, pretrained_factor={factor:g}"
            return report(False, "", f"With {where}: {problem}.")
    report(
        True,
        f"All {len(GROUP_CASES)} cases match param_groups: the head at lr, every other block "
        f"that learns at lr × factor, frozen blocks left out.",
        "",
    )


def _weights_problem(got: object, labels: np.ndarray, classes: int) -> str | None:
    """What is wrong with one answer of my_class_weights, or None."""
    expected = class_weights(labels, classes).numpy()
    if isinstance(got, torch.Tensor):
        got = got.detach().cpu().numpy()
    try:
        got = np.asarray(got, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return f"return one number per class (an array or a tensor), not a {type(got).__name__}"
    case = f"for labels {labels.tolist()[:12]}{'…' if len(labels) > 12 else ''}, {classes} classes"
    if got.shape != expected.shape:
        return (
            f"{case} it gave {got.size} weights, expected {classes}: one per class, even for a "
            f"class with no image (np.bincount(labels, minlength=num_classes))"
        )
    if not np.isfinite(got).all():
        return (
            f"{case} a weight is infinite or NaN: a class with no image must not divide by zero; "
            f"count it as 1 (np.maximum(counts, 1)), as class_weights does"
        )
    if np.allclose(got, expected, rtol=1e-5):
        return None
    ratio = got / expected
    if np.allclose(ratio, ratio[0], rtol=1e-5):
        return (
            f"{case} the proportions are right but the scale is not: normalise as "
            f"len(labels) / (num_classes × count) (a mean of 1 over the images when every class "
            f"is present)"
        )
    return (
        f"{case} expected {np.round(expected, 3).tolist()}, got {np.round(got, 3).tolist()}: "
        f"inverse frequency, len(labels) / (num_classes × count)"
    )


def check_class_weights(fn: Callable[[np.ndarray, int], object] | None) -> None:
    """Exercise: fn(labels, num_classes) gives course_utils.train.class_weights' weights."""
    if unanswered(fn):
        return
    for labels, classes in WEIGHT_CASES:
        got = fn(labels.copy(), classes)
        if unanswered(got):
            return
        if problem := _weights_problem(got, labels, classes):
            return report(False, "", problem[0].upper() + problem[1:] + ".")
    report(
        True,
        f"All {len(WEIGHT_CASES)} label sets match class_weights, the ones with missing classes "
        f"too: rare classes weigh more, and with every class present the mean weight over the "
        f"images is 1.",
        "",
    )
