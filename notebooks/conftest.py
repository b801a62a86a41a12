"""nbval runs every notebook (`make test`); this also keeps each cell's text output short."""

from __future__ import annotations

import pytest

MAX_TEXT_LINES = 80  # a cell printing more than this buries the lesson; summarise instead


def _text_lines(outputs: list) -> int:
    lines = 0
    for output in outputs:
        if output.get("output_type") == "stream":
            lines += output.get("text", "").count("\n")
        elif "text/html" not in output.get("data", {}):  # a DataFrame shows its HTML, not this
            lines += output.get("data", {}).get("text/plain", "").count("\n")
    return lines


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield  # a cell that failed raises here, and its own error is what gets reported
    outputs = getattr(item, "test_outputs", None)  # nbval's cell item keeps what the kernel sent
    if outputs and (lines := _text_lines(outputs)) > MAX_TEXT_LINES:
        pytest.fail(
            f"{item.name} printed {lines} lines of text (limit {MAX_TEXT_LINES}): "
            "print a summary or a table instead.",
            pytrace=False,
        )
    return result
