"""The rehearsal's fixtures module on the path, and a table of each notebook's time per pass."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 (pytest's hook)
    from test_rehearsal import FRESH_FETCHES, TIMES

    for name, times in TIMES.items():
        terminalreporter.write_sep("-", f"rehearsal, {name}: {sum(times.values()):.0f} s")
        for notebook, seconds in times.items():
            terminalreporter.write_line(f"{seconds:6.1f} s  {notebook}")
    if FRESH_FETCHES:
        terminalreporter.write_sep("-", "rehearsal, fresh VM: what each notebook fetched")
        for notebook, paths in FRESH_FETCHES.items():
            terminalreporter.write_line(f"{notebook}: {' '.join(paths) or 'nothing'}")
