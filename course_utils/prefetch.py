"""Fetch and prepare, before a workshop, everything the notebooks download on first use.

    python -m course_utils.prefetch                  # the profile's size and 128 px, all weights
    python -m course_utils.prefetch --sizes 64 128   # laptop and workshop sizes
    python -m course_utils.prefetch --sizes 64 128 --pack pack/ --with-runs   # a room's pack

Data lands in `$COURSE_DATA_DIR` (default data/), weights in the torch hub cache (`$TORCH_HOME`).
A pack (--pack DIR) holds what the room needs, the decoded arrays instead of the archives, with a
manifest of sha256s: serve it with `python -m course_utils.mirror DIR` (learners set
COURSE_MIRROR), or copy it to a USB stick (INSTRUCTOR.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

from course_utils.archives import prepared_path
from course_utils.config import data_dir, get_profile
from course_utils.datasets import NAMES, prepare_original
from course_utils.download import DownloadError
from course_utils.models import ARCHITECTURES, ARCHS, load_imagenet_state, weights_path
from course_utils.packs import write_pack
from course_utils.results import results_dir

# Notebook 07 looks inside the network at 128 px at least (max(profile.image_size, 128)): at the
# smoke profile's 32 px the last blocks' feature maps are a pixel or two wide.
ACTIVATION_SIZE = 128


def prefetch(
    sizes: list[int], datasets: tuple[str, ...] = NAMES, archs: tuple[str, ...] = ARCHITECTURES
) -> pd.DataFrame:
    """Every architecture's ImageNet weights (small, first), then each dataset at each size.

    Returns one row per item: what, status ("ready", "FAILED" or "skipped") and details (on
    failure, the manual steps). Nothing is left half-written: failures keep only resumable .part
    files. A dataset whose download failed is not tried again for its other sizes.
    """
    rows = []
    for arch in archs:
        try:
            load_imagenet_state(arch, allow_random=False)  # a workshop needs the real ones
            rows.append((f"{arch} weights", "ready", str(weights_path(arch))))
        except Exception as err:  # noqa: BLE001 (one failure must not hide the rest of the report)
            rows.append((f"{arch} weights", "FAILED", f"{type(err).__name__}: {err}"))
    for name in datasets:
        failed = False
        for size in sizes:
            item = f"{name} at {size} px"
            if failed:
                rows.append((item, "skipped", "its download failed above"))
                continue
            try:
                rows.append((item, "ready", f"{len(prepare_original(name, size)):,} images"))
            except DownloadError as err:
                rows.append((item, "FAILED", str(err)))
                failed = True
            except Exception as err:  # noqa: BLE001 (a bad archive, a full disk: report, go on)
                rows.append((item, "FAILED", f"{type(err).__name__}: {err}"))
    return pd.DataFrame(rows, columns=["item", "status", "details"]).set_index("item")


def main(argv: list[str] | None = None) -> int:
    """Command line: prefetch, print a report, exit 1 if anything failed."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.prefetch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="image sizes (default: the profile's and 128 px)"
    )
    parser.add_argument("--datasets", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--archs", nargs="+", choices=ARCHITECTURES, default=list(ARCHITECTURES))
    parser.add_argument("--pack", type=Path, help="also write a pack of what is ready into DIR")
    parser.add_argument("--with-runs", action="store_true", help="put the kept runs in the pack")
    args = parser.parse_args(argv)
    sizes = args.sizes or sorted({get_profile().image_size, ACTIVATION_SIZE})
    print(f"Data into {data_dir()}, weights into {torch.hub.get_dir()}")
    report = prefetch(sizes, tuple(args.datasets), tuple(args.archs))
    with pd.option_context("display.max_colwidth", 60, "display.width", 120):
        print(report.assign(details=report["details"].str.split("\n").str[0]))
    failed = report[report["status"] == "FAILED"]
    for item, row in failed.iterrows():
        print(f"\n{item}:\n{row['details']}")
    if args.pack:
        _pack(args.pack, report, sizes, tuple(args.datasets), tuple(args.archs), args.with_runs)
    return 1 if len(failed) else 0


def _pack(
    folder: Path, report: pd.DataFrame, sizes: list[int], datasets: tuple[str, ...],
    archs: tuple[str, ...], with_runs: bool,
) -> None:  # fmt: skip
    """Write the pack of what the report says is ready, and say how to serve it."""
    ready = set(report.index[report["status"] == "ready"])
    prepared = [
        (n, prepared_path(n, s)) for n in datasets for s in sizes if f"{n} at {s} px" in ready
    ]
    weights = [
        weights_path(a) for a in archs if f"{a} weights" in ready and not callable(ARCHS[a].weights)
    ]
    manifest = write_pack(folder, prepared, weights, results_dir() if with_runs else None)
    total = sum(f["bytes"] for f in manifest["files"])
    print(
        f"\nPack in {folder}: {len(manifest['files'])} files, {total / 1e9:.2f} GB "
        f"(manifest.json lists their sha256). Serve it to the room with\n"
        f"    python -m course_utils.mirror {folder}"
    )


if __name__ == "__main__":
    sys.exit(main())
