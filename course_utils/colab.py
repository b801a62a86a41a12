"""Colab that remembers: data, kept runs and ImageNet weights on Google Drive, so the next
notebook's fresh VM reuses what the previous one fetched, prepared and trained."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from course_utils.catalog import DATASETS
from course_utils.config import DATA_DIR_ENV
from course_utils.prefetch import ACTIVATION_SIZE
from course_utils.results import RESULTS_ENV

DRIVE = Path("/content/drive")  # where Colab mounts Google Drive
FOLDER = "MyDrive/tl-course"  # the course's folder in it


def keep_on_drive(folder: str = FOLDER, mount_point: Path | None = None) -> Path:
    """Mount Google Drive and point data, kept runs and the torch hub cache at `folder` there."""
    from google.colab import drive  # noqa: PLC0415 (there only on Colab)

    mount_point = Path(mount_point or DRIVE)
    drive.mount(str(mount_point))
    root = mount_point / folder
    places = {
        DATA_DIR_ENV: root / "data",
        RESULTS_ENV: root / "results",
        "TORCH_HOME": root / "torch",
    }
    for env, path in places.items():
        path.mkdir(parents=True, exist_ok=True)
        os.environ[env] = str(path)
    kept = _tally(root)
    print(f"Keeping the course on Google Drive in {root}: {kept}.")
    for line in tidy_archives(root / "data"):
        print(line)
    return root


def _tally(root: Path) -> str:
    """What the course folder on Drive already holds, in a few words."""
    prepared = sorted(p.stem for p in (root / "data" / "prepared").glob("*.npz"))
    runs = [p for p in (root / "results").glob("*/*") if (p / "info.json").is_file()]
    weights = list((root / "torch").rglob("*.pth"))
    if not (prepared or runs or weights):
        return "nothing yet (this notebook's downloads and runs will be kept there)"
    return (
        f"prepared data {', '.join(prepared) or 'none'}; {len(runs)} kept run(s); "
        f"{len(weights)} ImageNet weight file(s)"
    )


def tidy_archives(data: Path) -> list[str]:
    """Delete a dataset's archives and extracted images once it is prepared at ≥ 128 px.

    The notebooks need the profile's size and, for 07, at least ACTIVATION_SIZE; once a size that
    large is prepared the archives are no longer needed (another size would fetch them again).
    """
    lines = []
    for info in DATASETS.values():
        sizes = [
            int(m.group(1))
            for p in (data / "prepared").glob(f"{info.folder}_*px.npz")
            if (m := re.fullmatch(rf"{re.escape(info.folder)}_(\d+)px\.npz", p.name))
        ]
        folder = data / info.folder
        if not folder.is_dir() or max(sizes, default=0) < ACTIVATION_SIZE:
            continue
        freed = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        lines.append(
            f"{info.title} is prepared at {max(sizes)} px: its archives are no longer needed "
            f"and were deleted from Drive ({freed / 1e9:.2f} GB freed)."
        )
    return lines
