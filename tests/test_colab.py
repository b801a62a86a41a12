"""The notebooks' setup cell on Colab: it installs course_utils and leaves Colab's torch alone.

Colab is simulated: a `google.colab` module in sys.modules and an IPython whose `%pip` is
recorded instead of run. A real `pip install --dry-run` of this project then shows what pip would
install into an environment that already has torch, as Colab has.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement

from course_utils.config import REPO_URL

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("*.ipynb")
)
# torch releases Colab has shipped in its default runtime (CUDA builds carry a local label).
COLAB_TORCH = ["2.5.1+cu121", "2.6.0+cu124", "2.8.0+cu126", "2.9.0+cu126"]


class FakeIPython:
    """Records line magics such as %pip instead of running them."""

    def __init__(self) -> None:
        self.magics: list[tuple[str, str]] = []

    def run_line_magic(self, name: str, line: str) -> None:
        self.magics.append((name, line))


def run_setup_cell(path: Path, on_colab: bool, monkeypatch: pytest.MonkeyPatch) -> FakeIPython:
    """Execute a notebook's first code cell as IPython would, on Colab or not."""
    source = next(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
    )
    shell = FakeIPython()
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = TransformerManager().transform_cell(source)  # %pip -> get_ipython().run_line_magic
    exec(compile(code, f"{path.name} setup cell", "exec"), {"get_ipython": lambda: shell})
    return shell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_on_colab_the_setup_cell_installs_course_utils_and_nothing_else(path, monkeypatch):
    shell = run_setup_cell(path, on_colab=True, monkeypatch=monkeypatch)
    assert len(shell.magics) == 1
    name, line = shell.magics[0]
    args = shlex.split(line)
    assert name == "pip" and args[0] == "install"
    packages = [a for a in args[1:] if not a.startswith("-")]
    assert packages == [f"course_utils @ git+{REPO_URL}"]
    # No flag that would upgrade or reinstall what Colab already has (its CUDA torch above all).
    assert not {"-U", "--upgrade", "--force-reinstall", "--ignore-installed", "-I"} & set(args)


@pytest.mark.parametrize("path", NOTEBOOKS[:1], ids=lambda p: p.name)
def test_elsewhere_the_setup_cell_installs_nothing(path, monkeypatch):
    assert run_setup_cell(path, on_colab=False, monkeypatch=monkeypatch).magics == []


def test_colabs_torch_satisfies_our_requirements():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    for version in COLAB_TORCH:
        assert requirements["torch"].specifier.contains(version), version
    assert requirements["torchvision"].specifier.contains("0.20.1+cu121")


def test_pip_keeps_the_installed_torch(tmp_path):
    """pip's own resolver, on this project in an environment that has torch, installs no torch."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation",
         "--quiet", "--report", str(report), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    planned = {
        item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]
    }
    assert "course_utils" in {name.replace("-", "_") for name in planned}
    assert not {"torch", "torchvision", "nvidia-cudnn-cu12"} & planned, planned
