"""Structure of every notebook: opening, setup cell, summary, exercises, stripped outputs.

Running them is nbval's job (`make test` runs `pytest --nbval-lax notebooks/` in the smoke profile).
"""

import re
from pathlib import Path

import nbformat
import pytest

from course_utils.config import REPO, REPO_URL

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
ABSOLUTE_PATH = re.compile(r"(/work/|/root/|/home/\w|/Users/\w|/tmp/|[A-Z]:\\\\)")


def _read(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    return notebook


def _code(notebook) -> list[str]:
    return [c.source for c in notebook.cells if c.cell_type == "code"]


def _markdown(notebook) -> list[str]:
    return [c.source for c in notebook.cells if c.cell_type == "markdown"]


def test_the_course_has_notebooks_in_order():
    names = [p.name[:2] for p in LESSONS]
    assert names[:2] == ["00", "01"] and names == sorted(set(names))


@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=lambda p: p.name)
def test_opening_title_badge_and_setup_cell(path):
    notebook = _read(path)
    assert notebook.metadata.kernelspec.name == "python3"  # no "Select Kernel" dialog
    opening = notebook.cells[0]
    assert opening.cell_type == "markdown" and opening.source.startswith("# ")
    relative = path.relative_to(ROOT).as_posix()
    assert f"colab.research.google.com/github/{REPO}/blob/main/{relative}" in opening.source
    setup = _code(notebook)[0]
    for needed in (
        'IS_COLAB = "google.colab" in sys.modules',
        f"git+{REPO_URL}",
        "print_env()",
        "seed_everything(",
    ):
        assert needed in setup, f"the setup cell lacks {needed!r}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lessons_state_goals_times_summary_and_exercises(path):
    notebook = _read(path)
    opening = notebook.cells[0].source
    assert "**You will learn**" in opening
    for profile in ("smoke", "laptop", "workshop", "full"):
        assert re.search(rf"^\| {profile} \| .*\d.* \|$", opening, re.M), f"no time for {profile}"
    headings = [
        line for md in _markdown(notebook) for line in md.splitlines() if line.startswith("## ")
    ]
    assert "## Summary" in headings and "## Exercises" in headings
    assert headings.index("## Summary") < headings.index("## Exercises")
    checks = [src for src in _code(notebook) if re.search(r"^check_\w+\(", src, re.M)]
    assert len(checks) >= 2, "at least two exercises with a check function"
    assert (ROOT / "notebooks" / "solutions" / path.name).is_file(), "solutions notebook missing"


@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=lambda p: p.name)
def test_committed_without_outputs_or_absolute_paths(path):
    notebook = _read(path)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip outputs (make strip)"
        assert not ABSOLUTE_PATH.search(cell.source), f"absolute path in: {cell.source[:80]!r}"


def _times(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\| (smoke|laptop) \| (\d+ s) \(measured", text, re.M))


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_the_instructor_guide_quotes_each_notebooks_measured_times(path):
    guide = (ROOT / "INSTRUCTOR.md").read_text(encoding="utf-8")
    row = next((line for line in guide.splitlines() if line.startswith(f"| {path.name[:2]} ")), "")
    assert row, f"INSTRUCTOR.md's timing table has no row for {path.name}"
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    for profile, time in _times(_read(path).cells[0].source).items():
        column = {"smoke": 1, "laptop": 2}[profile]
        assert cells[column] == f"{time} measured", f"{path.name} {profile}: {cells[column]!r}"


def test_nbval_fails_a_cell_that_prints_too_much(tmp_path):
    """notebooks/conftest.py bounds each cell's text output while nbval runs the notebooks."""
    import shutil
    import subprocess
    import sys

    shutil.copy(ROOT / "notebooks" / "conftest.py", tmp_path)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata.kernelspec = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell("print('short')"),
        nbformat.v4.new_code_cell("for i in range(200):\n    print(i)"),
        nbformat.v4.new_code_cell("for i in range(200):\n    print(i)\n{}['missing']"),
    ]
    nbformat.write(notebook, tmp_path / "chatty.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-current-env", str(tmp_path / "chatty.ipynb")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert "2 failed, 1 passed" in result.stdout, result.stdout[-2000:]
    assert "printed 200 lines of text (limit 80)" in result.stdout
    assert "KeyError" in result.stdout  # a cell's own error is not hidden by the length check


def test_make_repo_points_every_badge_and_install_line_at_a_fork(tmp_path):
    import shutil
    import subprocess

    for name in ("Makefile", "README.md", "INSTRUCTOR.md"):
        shutil.copy(ROOT / name, tmp_path)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copytree(ROOT / "course_utils", tmp_path / "course_utils")
    result = subprocess.run(
        ["make", "-s", "-C", str(tmp_path), "repo", "REPO=my-lab/tl-course"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert 'REPO = "my-lab/tl-course"' in (tmp_path / "course_utils" / "config.py").read_text()
    for path in sorted((tmp_path / "notebooks").rglob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        assert REPO not in text, path.name
        relative = path.relative_to(tmp_path).as_posix()
        assert f"colab.research.google.com/github/my-lab/tl-course/blob/main/{relative}" in text
        assert "git+https://github.com/my-lab/tl-course" in text


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_lesson_has_its_solutions_deck_and_readme_row(path):
    """The places CONTRIBUTING.md lists for a new notebook."""
    assert (ROOT / "notebooks" / "solutions" / path.name).is_file()
    assert (ROOT / "slides" / "src" / f"{path.stem}.md").is_file()
    assert f"](notebooks/{path.name})" in (ROOT / "README.md").read_text(encoding="utf-8")


def _agendas(guide: str) -> dict[str, tuple[int, list[tuple[int, int, str]]]]:
    """Each agenda's stated teaching minutes and its rows: (start minute, length, activity)."""
    agendas = {}
    for title, minutes, body in re.findall(
        r"^### (.+?) \((\d+) min of teaching.*?\n(.*?)(?=^#|\Z)", guide, re.M | re.S
    ):
        rows = re.findall(r"^\| (\d\d):(\d\d) \| (\d*) \| ([^|]*)\|", body, re.M)
        agendas[title] = (
            int(minutes),
            [(int(h) * 60 + int(m), int(n or 0), what) for h, m, n, what in rows],
        )
    return agendas


def test_the_agendas_add_up_and_teach_every_core_notebook():
    guide = (ROOT / "INSTRUCTOR.md").read_text(encoding="utf-8")
    agendas = _agendas(guide)
    assert set(agendas) == {"Half-day: 09:00–12:30", "One day: 09:00–17:00"}
    core = {"Half-day": set(), "One day": set()}
    for line in guide.splitlines():
        if cells := re.match(r"^\| (\d\d) [^|]+\| (\w[^|]*) \| (\w[^|]*) \|", line):
            number, half, day = cells.groups()
            core["Half-day"] |= {number} if half.strip() == "core" else set()
            core["One day"] |= {number} if day.strip() == "core" else set()
    for title, (minutes, rows) in agendas.items():
        for (start, length, what), (following, _, _) in zip(rows, rows[1:], strict=False):
            assert start + length == following, f"{title}: {what.strip()!r} does not end on time"
        teaching = [n for _, n, what in rows if not re.search(r"break|lunch", what)]
        assert sum(teaching) == minutes, f"{title}: rows add up to {sum(teaching)} min"
        taught = {n for _, _, what in rows for n in re.findall(r"\*\*(\d\d) ", what)}
        assert core[title.split(":")[0]] == taught, f"{title}: core notebooks vs the rows"
