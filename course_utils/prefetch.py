"""Fetch and prepare, before a workshop, everything the notebooks download on first use.

    python -m course_utils.prefetch --sizes 64 128      # data at those sizes + all ImageNet weights

Data lands in `$COURSE_DATA_DIR` (default data/), weights in the torch hub cache (`$TORCH_HOME`):
copy both folders to a USB stick for a room without network (INSTRUCTOR.md).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
import torch

from course_utils.config import data_dir, get_profile
from course_utils.datasets import NAMES, prepare_original
from course_utils.download import DownloadError
from course_utils.models import ARCHITECTURES, _load_imagenet_state, weights_path


def prefetch(
    sizes: list[int], datasets: tuple[str, ...] = NAMES, archs: tuple[str, ...] = ARCHITECTURES
) -> pd.DataFrame:
    """Download and decode each dataset at each size, and every architecture's ImageNet weights.

    Returns one row per item: what, status ("ready" or "FAILED") and, on failure, the message
    with the manual steps. Nothing is left half-written: failures keep only resumable .part files.
    """
    strict = get_profile("laptop")  # a profile that never substitutes random weights
    rows = []
    for name in datasets:
        for size in sizes:
            try:
                data = prepare_original(name, size)
                rows.append((f"{name} at {size} px", "ready", f"{len(data):,} images"))
            except DownloadError as err:
                rows.append((f"{name} at {size} px", "FAILED", str(err)))
    for arch in archs:
        try:
            _load_imagenet_state(arch, strict)
            rows.append((f"{arch} weights", "ready", str(weights_path(arch))))
        except RuntimeError as err:
            rows.append((f"{arch} weights", "FAILED", str(err)))
    return pd.DataFrame(rows, columns=["item", "status", "details"]).set_index("item")


def main(argv: list[str] | None = None) -> int:
    """Command line: prefetch, print a report, exit 1 if anything failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", help="image sizes (default: the profile's)")
    parser.add_argument("--datasets", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--archs", nargs="+", choices=ARCHITECTURES, default=list(ARCHITECTURES))
    args = parser.parse_args(argv)
    sizes = args.sizes or [get_profile().image_size]
    print(f"Data into {data_dir()}, weights into {torch.hub.get_dir()}")
    report = prefetch(sizes, tuple(args.datasets), tuple(args.archs))
    with pd.option_context("display.max_colwidth", 60, "display.width", 120):
        print(report.assign(details=report["details"].str.split("\n").str[0]))
    failed = report[report["status"] == "FAILED"]
    for item, row in failed.iterrows():
        print(f"\n{item}:\n{row['details']}")
    return 1 if len(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
