"""Kaggle's copies of the datasets, read in place from /kaggle/input/ (read-only) when attached.

Kaggle mounts an attached dataset at /kaggle/input/<slug>/ (newer mounts may nest it deeper,
e.g. under owner and version folders), so each copy is found by its marker files a few levels
down rather than at one fixed path. $COURSE_KAGGLE_INPUT points the search elsewhere (tests).
Both copies carry duplicates: HAM10000's image folders appear twice (upper and lower case), and
the chest X-ray tree holds a whole second tree under chest_xray/chest_xray/ plus macOS `._`
files; each image is read once, from one tree.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from course_utils.catalog import DERMA, XRAY, XRAY_CLASSES

KAGGLE_INPUT_ENV = "COURSE_KAGGLE_INPUT"
DEFAULT_INPUT = "/kaggle/input"
MAX_DEPTH = 7  # /kaggle/input/<1>/…/<7>: e.g. datasets/<owner>/<slug>/versions/<n>/chest_xray
MAX_FOLDERS = 20_000  # folders looked at, at most, in one search
KAGGLE_DATASETS = {
    DERMA.name: "kmader/skin-cancer-mnist-ham10000",
    XRAY.name: "paultimothymooney/chest-xray-pneumonia",
}
HAM10000_METADATA = "HAM10000_metadata.csv"
HAM10000_PARTS = ("ham10000_images_part_1", "ham10000_images_part_2")  # compared lower-cased
XRAY_SPLITS = ("train", "val", "test")  # Kaggle's val: 16 images of Kermany's train split
IMAGE_SUFFIXES = (".jpg", ".jpeg")


def kaggle_input() -> Path:
    """Where Kaggle mounts attached datasets: $COURSE_KAGGLE_INPUT, else /kaggle/input."""
    return Path(os.environ.get(KAGGLE_INPUT_ENV) or DEFAULT_INPUT)


def on_kaggle() -> bool:
    """Is there a Kaggle input folder (a Kaggle notebook, or a test's stand-in)?"""
    return kaggle_input().is_dir()


def attach_hint(name: str) -> str:
    """The one line that says which Kaggle dataset to attach for "derma" or "xray"."""
    if name not in KAGGLE_DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(KAGGLE_DATASETS)}.")
    return f"On Kaggle: Add Input → Datasets → {KAGGLE_DATASETS[name]}"


def _skipped(entry: os.DirEntry) -> bool:
    """macOS metadata and hidden entries, never part of a dataset."""
    return entry.name.startswith(".") or entry.name == "__MACOSX"


def _folders(folder: Path) -> list[Path]:
    """The sub-folders of `folder` (not hidden, not __MACOSX), sorted; none if unreadable."""
    try:
        with os.scandir(folder) as entries:
            found = [Path(e.path) for e in entries if e.is_dir() and not _skipped(e)]
    except OSError:
        return []
    return sorted(found)


def _child(folder: Path, name: str, want_dir: bool = True) -> Path | None:
    """The entry of `folder` named `name` in any case (the exact spelling first), or None."""
    exact = folder / name
    if exact.is_dir() if want_dir else exact.is_file():
        return exact
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:  # an unreadable folder holds nothing of ours
        return None
    for path in entries:
        if path.name.lower() == name.lower() and (path.is_dir() if want_dir else path.is_file()):
            return path
    return None


def _search(matches: Callable[[Path], bool]) -> Path | None:
    """The shallowest folder under kaggle_input() that `matches` (first in name order), or None.

    A folder that matches is not searched further, so a duplicate nested inside it is never
    found; __MACOSX and hidden folders are not searched at all.
    """
    level, seen = _folders(kaggle_input()), 0
    for _ in range(MAX_DEPTH):
        for folder in level:
            if matches(folder):
                return folder
        seen += len(level)
        if not level or seen > MAX_FOLDERS:
            return None
        level = [child for folder in level for child in _folders(folder)]
    return None


def _has_metadata(folder: Path) -> bool:
    """Does `folder` hold HAM10000_metadata.csv and at least one HAM10000 image folder?"""
    return _child(folder, HAM10000_METADATA, want_dir=False) is not None and bool(
        _ham10000_folders(folder)
    )


def _ham10000_folders(folder: Path) -> list[Path]:
    """One folder per image part: the upper-case spelling where the part is there twice."""
    chosen = {}
    for path in _folders(folder):  # sorted: "HAM10000_…" comes before "ham10000_…"
        if path.name.lower() in HAM10000_PARTS:
            chosen.setdefault(path.name.lower(), path)
    return [chosen[part] for part in sorted(chosen)]


def ham10000_input() -> tuple[Path, list[Path]] | None:
    """HAM10000's metadata CSV and its image folders in the attached Kaggle copy, or None."""
    folder = _search(_has_metadata)
    if folder is None:
        return None
    return _child(folder, HAM10000_METADATA, want_dir=False), _ham10000_folders(folder)


def ham10000_files(folders: list[Path]) -> dict[str, Path]:
    """Each image of `folders` by file name, once (the first folder holding a name wins)."""
    files: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                files.setdefault(path.name, path)
    return files


def _is_xray_root(folder: Path) -> bool:
    """Does `folder` hold train/ and test/, each with NORMAL/ and PNEUMONIA/?"""
    for split in ("train", "test"):
        found = _child(folder, split)
        if found is None or any(_child(found, label) is None for label in XRAY_CLASSES):
            return False
    return True


def chest_xray_input() -> Path | None:
    """The folder holding train/ and test/ in the attached Kaggle X-ray copy (one tree), or None."""
    return _search(_is_xray_root)


def chest_xray_files(root: Path) -> list[Path]:
    """Every root/{train,val,test}/{NORMAL,PNEUMONIA}/*.jp(e)g, sorted; no macOS `._` files."""
    files = []
    for split in filter(None, (_child(root, s) for s in XRAY_SPLITS)):
        for label in filter(None, (_child(split, c) for c in XRAY_CLASSES)):
            files += [
                path
                for path in label.iterdir()
                if path.suffix.lower() in IMAGE_SUFFIXES
                and not path.name.startswith(".")
                and path.is_file()
            ]
    return sorted(files)


def is_attached(name: str) -> bool:
    """Is a Kaggle copy of "derma" or "xray" attached (its images at hand, without network)?"""
    return (ham10000_input() if name == DERMA.name else chest_xray_input()) is not None


def announce(name: str, where: Path | None) -> None:
    """Say that the attached copy in `where` is used, or (on Kaggle) which one to attach."""
    if where is not None:
        print(
            f"Using the attached Kaggle dataset {KAGGLE_DATASETS[name]} in place ({where}): "
            f"nothing is downloaded."
        )
    elif on_kaggle():
        print(f"{attach_hint(name)} to read it in place instead of downloading it.")
