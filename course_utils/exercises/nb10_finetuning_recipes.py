"""Checks for notebook 10_finetuning_recipes."""

from __future__ import annotations

from course_utils.exercises._check import report, unanswered


def check_pretrained_lr(answer: float | None, lr: float, factor: float) -> None:
    """Exercise: the learning rate param_groups gives the pretrained blocks."""
    if unanswered(answer):
        return
    expected = lr * factor
    report(
        abs(float(answer) - expected) < 1e-12,
        f"{expected:g}: the head's rate times the factor.",
        "The head gets lr; every other trainable block gets lr × pretrained_factor.",
    )


def check_small_data_rule(answer: list[str] | str | None) -> None:
    """Exercise: the blocks to unfreeze for 600 images (none: only the head, the last layer)."""
    if unanswered(answer):
        return
    names = {answer} if isinstance(answer, str) else set(answer)
    report(
        names <= {"head"},
        "Right: freeze(model, trainable=[]) leaves only the head learning.",
        "With fewer than about 1,000 images, train only the last layer. freeze() always keeps "
        "the head trainable, so no block needs naming.",
    )
