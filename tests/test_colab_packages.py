"""On Colab the setup cell changes nothing Colab ships: every requirement admits Colab's version.

The setup cell runs `%pip install "course_utils @ git+…"` (no extras, see test_colab.py). pip
keeps an installed package only when it satisfies every requirement on it, and one it replaces
after import needs a runtime restart; Colab's ipywidgets is tied to Colab's own front end. So:

- each requirement of course_utils, and of each package pip would add (medmnist, fire, …), must
  admit the version Colab ships (its published list: shared/colab/pip-freeze.gpu.txt, Python 3.13);
- the explorers in course_utils.widgets must work with Colab's ipywidgets 7 as well as with 8;
- course_utils's source must compile with Python 3.13, Colab's Python.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# shared/ sits beside the checkout on a developer's machine, inside it on the device machine.
COLAB_DIR = next(
    (d for d in (ROOT / "shared" / "colab", ROOT.parent / "shared" / "colab") if d.is_dir()),
    ROOT.parent / "shared" / "colab",
)
FREEZE = COLAB_DIR / "pip-freeze.gpu.txt"
OS_INFO = COLAB_DIR / "os-info-gpu.txt"
needs_freeze = pytest.mark.skipif(
    not FREEZE.is_file(), reason=f"Colab's package list is not here ({FREEZE})"
)

# Colab's widget stack as its freeze lists it, installed over this venv to run the explorers.
# test_the_widget_pins_are_colabs keeps these in step with the freeze when it is refreshed.
COLAB_WIDGET_STACK = {
    "ipywidgets": "7.7.1",
    "widgetsnbextension": "3.6.10",
    "jupyterlab-widgets": "3.0.16",
    "ipython-genutils": "0.2.0",
    "traitlets": "5.7.1",
    "ipython": "7.34.0",
    "ipykernel": "6.17.1",
    "backcall": "0.2.0",  # the three below: IPython 7 needs them, this venv's IPython does not
    "pickleshare": "0.7.5",
    "decorator": "4.4.2",
}


def colab_packages() -> dict[str, Version | None]:
    """Colab's packages by canonical name; None for one installed from a URL (no version)."""
    packages: dict[str, Version | None] = {}
    for line in FREEZE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            packages[canonicalize_name(name)] = Version(version)
        elif " @ " in line:
            packages[canonicalize_name(line.split(" @ ", 1)[0])] = None
    return packages


def colab_environment() -> dict[str, str]:
    """Marker values for Colab's runtime: Linux x86_64, CPython at the version os-info gives."""
    os_info = OS_INFO.read_text() if OS_INFO.is_file() else ""
    python = re.search(r"^Python (\d+\.\d+\.\d+)", os_info, re.MULTILINE)
    full = python.group(1) if python else "3.13.0"
    return {
        **default_environment(),
        "python_version": ".".join(full.split(".")[:2]),
        "python_full_version": full,
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
    }


class Clash(NamedTuple):
    package: str
    requirement: str
    colab_version: Version
    required_by: str

    def __str__(self) -> str:
        return (
            f"{self.package}: {self.required_by} requires {self.requirement!r},"
            f" Colab ships {self.colab_version}"
        )


class Walk(NamedTuple):
    clashes: list[Clash]
    walked: set[str]  # packages pip would add, whose requirements were read
    unread: set[str]  # packages pip would add that this venv lacks (e.g. for Python 3.13 only)


def walk(roots: list[str], colab: dict[str, Version | None], environment: dict[str, str]) -> Walk:
    """What pip, given `roots` on Colab, would find at odds with what Colab ships.

    A requirement on a package Colab ships must admit Colab's version; pip keeps that copy, whose
    own requirements Colab has met already. A package Colab lacks is one pip would add: its
    requirements, as this venv's copy declares them, are walked in turn.
    """
    found = Walk([], set(), set())
    # (requirement, who requires it, the extras asked of that requirer)
    queue = [(Requirement(line), "course_utils", frozenset()) for line in roots]
    while queue:
        requirement, required_by, extras = queue.pop()
        if requirement.marker and not any(
            requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
        ):
            continue
        name = canonicalize_name(requirement.name)
        if name in colab:
            version = colab[name]
            if version is not None and not requirement.specifier.contains(
                version, prereleases=True
            ):
                found.clashes.append(Clash(name, str(requirement), version, required_by))
            continue
        if name in found.walked | found.unread:
            continue
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            found.unread.add(name)
            continue
        found.walked.add(name)
        requirer = f"{dist.metadata['Name']} {dist.version}"
        asked = frozenset(requirement.extras)
        queue += [(Requirement(line), requirer, asked) for line in dist.requires or []]
    return found


def our_requirements() -> list[str]:
    """course_utils's `dependencies`: what the setup cell's git install asks for (no extras)."""
    import tomllib  # Python 3.11+; the project allows 3.10, where only this test would fail

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


@needs_freeze
def test_our_requirements_admit_colabs_versions():
    clashes = walk(our_requirements(), colab_packages(), colab_environment()).clashes
    direct = [c for c in clashes if c.required_by == "course_utils"]
    assert not direct, "course_utils would replace what Colab ships:\n" + "\n".join(
        map(str, direct)
    )


@needs_freeze
def test_what_pip_adds_on_colab_admits_colabs_versions_too():
    found = walk(our_requirements(), colab_packages(), colab_environment())
    indirect = [c for c in found.clashes if c.required_by != "course_utils"]
    assert not indirect, "what pip adds would replace what Colab ships:\n" + "\n".join(
        map(str, indirect)
    )
    # The walk went where pip goes: into the packages Colab lacks, and theirs.
    assert {"medmnist", "fire", "efficientnet-lite-pytorch"} <= found.walked, found.walked
    if found.unread:
        warnings.warn(f"not installed here, requirements unchecked: {found.unread}", stacklevel=1)


def test_the_walk_reports_every_clash_and_who_caused_it():
    """ipywidgets>=8.1 was the bug: it clashes, and so does what this venv's ipywidgets 8 needs."""
    colab = {"ipywidgets": Version("7.7.1"), "widgetsnbextension": Version("3.6.10")}
    clashes = walk(["ipywidgets>=8.1"], colab, colab_environment()).clashes
    assert clashes == [Clash("ipywidgets", "ipywidgets>=8.1", Version("7.7.1"), "course_utils")]
    if Version(distribution("ipywidgets").version).major < 8:
        pytest.skip("this venv's ipywidgets is not 8, whose requirements the rest checks")
    del colab["ipywidgets"]  # now pip would add ipywidgets 8, as installed here
    (clash,) = walk(["ipywidgets>=8.1"], colab, colab_environment()).clashes
    assert clash.package == "widgetsnbextension" and clash.required_by.startswith("ipywidgets 8")
    assert "widgetsnbextension: ipywidgets 8" in str(clash) and "Colab ships 3.6.10" in str(clash)


def test_markers_are_read_for_colabs_python_and_the_extras_asked():
    environment = colab_environment()
    colab = {"old": Version("1.0")}
    assert walk(['old>=2; python_version < "3.12"'], colab, environment).clashes == []
    assert walk(['old>=2; python_version >= "3.13"'], colab, environment).clashes != []
    assert walk(['old>=2; extra == "test"'], colab, environment).clashes == []


@needs_freeze
def test_the_widget_pins_are_colabs():
    colab = colab_packages()
    stale = {
        name: (pin, str(colab.get(canonicalize_name(name))))
        for name, pin in COLAB_WIDGET_STACK.items()
        if colab.get(canonicalize_name(name)) != Version(pin)
    }
    assert not stale, f"update COLAB_WIDGET_STACK (ours, Colab's): {stale}"


# --- The explorers on ipywidgets 7 and 8 -------------------------------------------------------


def drive_explorers() -> str:
    """Build every explorer, move each control, check each redraw; returns the versions used.

    Runs here (this venv's ipywidgets) and in a subprocess over Colab's widget stack. Deprecation
    warnings fail it: ipywidgets 7 takes an 8-only argument (description_allow_html=True, a style
    key) with no more than a DeprecationWarning from traitlets, and then ignores it.
    """
    import IPython
    import ipywidgets
    import traitlets

    with warnings.catch_warnings():
        for module in ("course_utils", "ipywidgets", "traitlets"):
            warnings.filterwarnings("error", category=DeprecationWarning, module=module)
        _drive_activation_explorer()
        _drive_mistake_gallery()
    return (
        f"ipywidgets={ipywidgets.__version__} traitlets={traitlets.__version__}"
        f" IPython={IPython.__version__}"
    )


def _titles() -> list[str]:
    """The axes' titles of the figure the last redraw made (under Agg, show() keeps it)."""
    import matplotlib.pyplot as plt

    return [ax.get_title() for ax in plt.gcf().axes]


def _drive_activation_explorer() -> None:
    import ipywidgets
    import matplotlib.pyplot as plt

    from course_utils import widgets

    images = np.zeros((3, 8, 8), np.uint8)
    maps = {"block1": torch.rand(3, 4, 4, 4), "block2": torch.rand(3, 2, 2, 2)}
    explorer = widgets.activation_explorer(images, maps, titles=["a", "b", "c"])
    (image, layer, channel), output = explorer.children[0].children, explorer.children[1]
    assert isinstance(output, ipywidgets.Output) and layer.value == "block1"
    assert _titles()[:2] == ["a", "block1, channel 0 (4×4)"]
    channel.value = 3
    assert _titles()[1] == "block1, channel 3 (4×4)"
    layer.value = "block2"  # two channels: the slider shrinks and its value follows
    assert (channel.max, channel.value) == (1, 1)
    assert _titles()[1] == "block2, channel 1 (2×2)"
    image.value = 2
    assert _titles()[0] == "c"
    plt.close("all")


def _drive_mistake_gallery() -> None:
    import matplotlib.pyplot as plt

    from course_utils import errors, widgets

    images = np.zeros((3, 8, 8), np.uint8)
    table = errors.mistakes(np.eye(2)[[1, 1, 0]], np.array([0, 1, 1]), ["a", "b"])
    page = widgets.mistake_gallery(images, table, per_page=1).children[0]
    assert (page.max, page.description, _titles()[0]) == (2, "page (of 2)", "a → b\n(1.00)")
    page.value = 2
    assert _titles()[0] == "b → a\n(1.00)"
    plt.close("all")


def colab_widget_stack() -> Path:
    """Colab's widget stack, pip-installed (no deps) into a folder in /tmp kept between runs."""
    pins = [f"{name}=={version}" for name, version in COLAB_WIDGET_STACK.items()]
    key = hashlib.sha256(" ".join(pins).encode()).hexdigest()[:8]
    target = Path(tempfile.gettempdir()) / (
        f"course_utils-ipywidgets-{COLAB_WIDGET_STACK['ipywidgets']}-{key}"
    )
    if (target / "ipywidgets").is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--disable-pip-version-check", "--target", str(staging), *pins],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip("pip could not install Colab's widget stack within 300 s")
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        pytest.skip(f"pip could not install Colab's widget stack (no registry?): {last}")
    try:
        staging.rename(target)  # whole or not at all, so an interrupted install is not reused
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def test_the_explorers_work_on_this_venvs_ipywidgets():
    assert drive_explorers().startswith("ipywidgets=")


def test_the_explorers_work_on_colabs_ipywidgets_7():
    site = colab_widget_stack()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "MPLBACKEND": "Agg"}
    call = f"import runpy; print(runpy.run_path({str(Path(__file__))!r})['drive_explorers']())"
    result = subprocess.run(
        [sys.executable, "-c", call],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stack = COLAB_WIDGET_STACK
    versions = f"ipywidgets={stack['ipywidgets']} traitlets={stack['traitlets']}"
    assert f"{versions} IPython={stack['ipython']}" in result.stdout, result.stdout[-1000:]


# --- Colab's Python ------------------------------------------------------------------------------


def python313() -> str | None:
    """A Python 3.13 that runs (a pyenv shim may be on PATH without the version behind it)."""
    candidates = [
        os.environ.get("PYTHON313"),
        *map(str, sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))),
        shutil.which("python3.13"),
    ]
    for candidate in filter(None, candidates):
        try:
            run = subprocess.run([candidate, "--version"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if run.returncode == 0:
            return candidate
    return None


def test_course_utils_compiles_with_python_3_13():
    """Syntax, and SyntaxWarnings (e.g. invalid escapes) as errors: Colab runs Python 3.13."""
    python = python313()
    if python is None:
        pytest.skip("no Python 3.13 here (set PYTHON313 to one)")
    sources = sorted(map(str, (ROOT / "course_utils").rglob("*.py")))
    check = "import sys\nfrom pathlib import Path\nfor p in sys.argv[1:]:\n"
    check += "    compile(Path(p).read_bytes(), p, 'exec')"
    result = subprocess.run(
        [python, "-W", "error", "-c", check, *sources], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert len(sources) > 20
