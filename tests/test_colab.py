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


def _fake_drive(monkeypatch: pytest.MonkeyPatch, mount_point: Path) -> list[str]:
    """google.colab.drive whose mount() makes the MyDrive folder, as Colab's does."""
    mounted: list[str] = []
    drive = types.ModuleType("google.colab.drive")

    def mount(path: str) -> None:
        mounted.append(path)
        (Path(path) / "MyDrive").mkdir(parents=True, exist_ok=True)

    drive.mount = mount
    colab = types.ModuleType("google.colab")
    colab.drive = drive
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    return mounted


def _setup_with_drive(path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeIPython:
    """The setup cell with KEEP_ON_DRIVE = True, on (simulated) Colab."""
    source = next(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
    )
    assert "KEEP_ON_DRIVE = False" in source
    source = source.replace("KEEP_ON_DRIVE = False", "KEEP_ON_DRIVE = True")
    shell = FakeIPython()
    code = TransformerManager().transform_cell(source)
    exec(compile(code, f"{path.name} setup cell", "exec"), {"get_ipython": lambda: shell})
    return shell


def test_keep_on_drive_carries_data_runs_and_weights_to_the_next_notebooks_vm(
    monkeypatch, tmp_path, capsys
):
    """Two notebooks on two fresh VMs share one Drive: the second finds what the first kept."""
    from course_utils import colab, results
    from course_utils.archives import prepared_path
    from course_utils.config import data_dir

    drive = tmp_path / "drive"
    monkeypatch.setattr(colab, "DRIVE", drive)
    mounted = _fake_drive(monkeypatch, drive)
    for env in ("COURSE_DATA_DIR", "COURSE_RESULTS_DIR", "TORCH_HOME"):
        monkeypatch.delenv(env, raising=False)
    shell = _setup_with_drive(NOTEBOOKS[2], monkeypatch)  # 02 on the first VM
    assert mounted == [str(drive)] and len(shell.magics) == 1
    root = drive / "MyDrive" / "tl-course"
    assert data_dir() == root / "data" and results.results_dir() == root / "results"
    assert "nothing yet" in capsys.readouterr().out
    # What the first notebook fetched, prepared at 128 px and trained lands on Drive ...
    archive = data_dir() / "chest_xray" / "ChestXRay2017.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"x" * 1000)
    cache = prepared_path("xray", 128)
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"npz")
    (results.results_dir() / "workshop" / "vgg16_05").mkdir(parents=True)
    (results.results_dir() / "workshop" / "vgg16_05" / "info.json").write_text("{}")
    # ... and the next notebook, on a fresh VM (no environment left), finds it there.
    for env in ("COURSE_DATA_DIR", "COURSE_RESULTS_DIR", "TORCH_HOME"):
        monkeypatch.delenv(env, raising=False)
    _setup_with_drive(NOTEBOOKS[6], monkeypatch)
    out = capsys.readouterr().out
    assert "prepared data chest_xray_128px; 1 kept run(s)" in out
    assert "archives are no longer needed and were deleted from Drive" in out
    assert not archive.exists() and cache.is_file()
