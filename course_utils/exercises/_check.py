"""The shared ✅/❌ machinery of the check functions."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def report(correct: bool, success: str, hint: str) -> None:
    """Print ✅ and the success message, or ❌ and the hint."""
    print(f"✅ {success}" if correct else f"❌ {hint}")


def unanswered(*answers: object) -> bool:
    """Say so and return True if any answer is still None or `...`."""
    if any(a is None or a is Ellipsis for a in answers):
        print("❌ Not answered yet: replace the None (or ...) with your answer, then run the cell.")
        return True
    return False


def check_function(
    fn: Callable[..., object] | None,
    cases: list[tuple[tuple, object]],
    success: str,
    hint: Callable[[tuple, object, object], str],
) -> None:
    """Call fn(*args) once for every (args, expected) case: ✅ if all match, else ❌ with a hint."""
    if unanswered(fn):
        return
    for args, expected in cases:
        got = fn(*args)
        if unanswered(got):
            return
        if got != expected:
            return report(False, "", hint(args, expected, got))
    return report(True, success, "")


def held_tensors(model: nn.Module, held: list[int]) -> tuple[bool, list[str], list[str]]:
    """For held tensor ids: any held twice, the frozen ones held, the learning ones missed."""
    names = {id(p): name for name, p in model.named_parameters()}
    learning = {id(p) for p in model.parameters() if p.requires_grad}
    frozen = [names.get(i, "a tensor that is not the model's") for i in held if i not in learning]
    missed = [names[i] for i in learning - set(held)]
    return len(set(held)) != len(held), frozen, missed
