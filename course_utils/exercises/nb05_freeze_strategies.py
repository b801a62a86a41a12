"""Checks for notebook 05_freeze_strategies (not_meaningful and macro_f1_on_test serve 06 too)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from course_utils.config import PROFILES, Profile, get_profile
from course_utils.exercises._check import held_tensors, report, unanswered
from course_utils.metrics import classification_scores
from course_utils.models import build_model, count_parameters, freeze

# The calls check_strategy_setup makes, in this order on one model: a block that one call
# freezes (block1, then all of them) must learn again when a later call names it.
SETUP_CASES = (
    ("block1",),
    ("block5",),
    (),
    ("block1", "block2", "block3", "block4", "block5"),
    ("block1", "block5"),
)


def check_trainable_parameters(
    answer: int | None, trainable: tuple[str, ...], classes: int, profile: Profile
) -> None:
    """Exercise: VGG16 (seed head, profile's image size) parameters that learn with `trainable`."""
    if unanswered(answer):
        return
    vgg16 = build_model("vgg16", classes, weights=None, head="seed", profile=profile)
    model = freeze(vgg16, trainable)
    expected = count_parameters(model, trainable_only=True)
    report(
        answer == expected,
        f"{expected:,} parameters learn: the unfrozen blocks plus the head.",
        f"Expected {expected:,}: sum the 'trainable' column of block_table(model) after freeze.",
    )


_SMOKE = (
    f"{PROFILES['smoke'].max_samples} images of {PROFILES['smoke'].image_size} px, "
    f"at most {PROFILES['smoke'].epochs} epochs"
)


def _smoke_note() -> str:
    """A line for a ✅ about scores from the smoke profile, which are not meaningful."""
    if get_profile().name != "smoke":
        return ""
    return (
        f"\n   In smoke the scores themselves mean nothing ({_SMOKE}, usually generated data and "
        f"random weights): the tick is for the reading, not the result."
    )


def not_meaningful(runs: Mapping) -> list[str]:
    """Why these runs' scores say nothing (empty if nothing is known against them)."""
    infos = [run.info for run in runs.values()]
    reasons = []
    if any(info.get("profile") == "smoke" for info in infos):
        reasons.append(f"the smoke profile: {_SMOKE}")
    if any("generated" in str(info.get("source", "")) for info in infos):
        reasons.append("the data is a generated sample")
    if any(str(info.get("recipe", {}).get("weights", "")).startswith("random (") for info in infos):
        reasons.append("the 'ImageNet' runs started from random weights")
    return reasons


def macro_f1_on_test(run) -> float:
    """A kept run's macro F1 on its test predictions."""
    return classification_scores(run.labels, run.probs.argmax(axis=1), run.probs.shape[1])[
        "macro_f1"
    ]


def check_chosen_on_validation(answer: str | None, runs: Mapping) -> None:
    """Exercise: the run with the best validation macro F1 of its kept epoch (ties: any).

    The test set plays no part in the choice; a choice that is best on test only is named as such.
    """
    if unanswered(answer):
        return
    validation = {
        name: run.history.best["val_macro_f1"]
        for name, run in runs.items()
        if run.history is not None and run.history.epochs
    }
    if answer not in validation:
        return report(False, "", f"{answer!r} is not one of the runs: {', '.join(validation)}.")
    top = max(validation.values())
    best = [name for name, value in validation.items() if value >= top - 1e-9]
    test = {name: round(macro_f1_on_test(runs[name]), 2) for name in validation}
    if answer in best:
        reasons = not_meaningful(runs)
        note = (
            f"\n   Here the numbers are not meaningful ({'; '.join(reasons)}): the tick says you "
            f"chose on validation, not which strategy is best."
            if reasons
            else ""
        )
        return report(
            True,
            f"{answer!r}: the best validation macro F1 of the epochs the runs kept ({top:.2f}). "
            f"Its test macro F1, {test[answer]:.2f}, is the one to report: the test set played "
            f"no part in choosing it.{note}",
            "",
        )
    if test[answer] == max(test.values()):
        return report(
            False,
            "",
            f"{answer!r} is best on the test table, not on validation. A run picked for its test "
            f"score has an optimistic test score: choose with run.history.best['val_macro_f1'].",
        )
    return report(
        False,
        "",
        f"Not that one: {answer!r} kept a validation macro F1 of {validation[answer]:.2f}, the "
        f"best is {top:.2f}. Compare run.history.best['val_macro_f1'] across runs.",
    )


def _wrongly_set(model: nn.Module, trainable: tuple[str, ...]) -> str | None:
    """What the first parameter whose requires_grad disagrees with the strategy says, or None."""
    for name, parameter in model.named_parameters():
        block = name.split(".")[0]
        should = block in trainable or block == "head"
        if parameter.requires_grad == should:
            continue
        if block == "head":
            return f"the head must always learn, but {name} has requires_grad=False"
        if should:
            return (
                f"{block} should learn, but {name} has requires_grad=False (an earlier call "
                f"froze it?): set requires_grad_(True) on the blocks named, not only False on "
                f"the others"
            )
        return (
            f"{block} should be frozen, but {name} has requires_grad=True: call "
            f"requires_grad_(False) on every block not named (the head excepted)"
        )
    return None


def _optimizer_problem(model: nn.Module, optimizer: torch.optim.Optimizer, lr: float) -> str | None:
    """What is wrong with the tensors (or learning rate) the optimiser holds, or None."""
    held = [id(p) for group in optimizer.param_groups for p in group["params"]]
    twice, extra, missing = held_tensors(model, held)
    if twice:
        return "the optimiser holds some tensors twice: build it from one list of parameters"
    if extra:
        return (
            f"the optimiser also holds {len(extra)} tensors that do not learn (e.g. {extra[0]}): "
            f"give it [p for p in model.parameters() if p.requires_grad]. Adam skips a tensor "
            f"without a gradient, but would move it the moment its requires_grad came back on"
        )
    if missing:
        return (
            f"the optimiser misses {len(missing)} tensors that learn (e.g. {missing[0]}): they "
            f"would get gradients but never change"
        )
    rates = {group["lr"] for group in optimizer.param_groups}
    if rates != {lr}:
        return f"the optimiser should use lr={lr:g}, the one passed in (it has {sorted(rates)})"
    return None


def check_strategy_setup(
    fn: Callable[[nn.Module, tuple[str, ...], float], torch.optim.Optimizer] | None,
) -> None:
    """Exercise: fn(model, trainable, lr) freezes every block not named (the head learns) and
    returns an optimiser over exactly the parameters that learn.

    Called with several strategies in turn on one VGG16 (random weights, seed head, 32 px).
    """
    if unanswered(fn):
        return
    model = build_model("vgg16", 7, weights=None, head="seed", image_size=32)
    lr = 3e-4
    for trainable in SETUP_CASES:
        optimizer = fn(model, trainable, lr)
        if unanswered(optimizer):
            return
        if not isinstance(optimizer, torch.optim.Optimizer):
            kind = type(optimizer).__name__
            return report(False, "", f"Return the optimiser (torch.optim.Adam(...)), not a {kind}.")
        problem = _wrongly_set(model, trainable) or _optimizer_problem(model, optimizer, lr)
        if problem:
            return report(False, "", f"With trainable={trainable}: {problem}.")
    report(
        True,
        f"All {len(SETUP_CASES)} strategies right, one after another on the same model: the "
        f"blocks not named are frozen, the named ones and the head learn, and the optimiser "
        f"holds exactly the tensors that learn.",
        "",
    )
