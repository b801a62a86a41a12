"""The shared ✅/❌ machinery of the check functions."""

from __future__ import annotations

from collections.abc import Callable


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
