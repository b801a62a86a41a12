"""The environment report every notebook opens with: versions, device, profile, data, weights."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from course_utils.config import (
    PROFILE_ENV,
    Profile,
    data_dir,
    get_device,
    get_profile,
    profile_reason,
)
from course_utils.kaggle import KAGGLE_DATASETS, is_attached
from course_utils.models import available_weights
from course_utils.remote import MIRROR_ENV


def _versions() -> dict[str, str]:
    import matplotlib
    import pandas
    import sklearn
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
    }


def environment_report(profile: Profile | None = None) -> dict[str, object]:
    """Everything `print_env` shows, as a dict (handy for tests and for saving with results)."""
    profile = profile or get_profile()
    device = get_device()
    cache = data_dir()
    cached = (
        sorted(p.name for p in cache.iterdir() if p.name != "README.md") if cache.exists() else []
    )
    return {
        "versions": _versions(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "on_colab": "google.colab" in sys.modules,
        "profile": asdict(profile),
        "profile_reason": profile_reason(),
        "data_dir": str(cache),
        "data_cached": cached,
        "weights": available_weights(),
        "at_hand": _at_hand(cache),
    }


def _at_hand(cache: Path) -> list[str]:
    """Where data comes from before any published host: a mirror, Kaggle inputs, Google Drive."""
    found = []
    if mirror := os.environ.get(MIRROR_ENV, "").strip():
        found.append(f"the mirror {mirror} (asked first for every download)")
    found += [
        f"Kaggle's {KAGGLE_DATASETS[n]} (read in place)" for n in KAGGLE_DATASETS if is_attached(n)
    ]
    if str(cache).startswith("/content/drive/"):
        found.append("Google Drive (data and kept runs stay for the next notebook)")
    return found


def print_env(profile: Profile | None = None) -> Profile:
    """Print versions, device, profile (and why), data and weights on hand; return the profile."""
    report = environment_report(profile)
    profile = profile or get_profile()
    print("Versions  : " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    gpu = f" ({report['gpu']})" if report["gpu"] else ""
    print(f"Device    : {report['device']}{gpu}")
    print(f"Profile   : {profile.name} ({report['profile_reason']}): {profile.purpose}")
    samples = profile.max_samples or "all"
    print(
        f"            image {profile.image_size} px, samples {samples}, epochs ≤ {profile.epochs}, "
        f"batch {profile.batch_size}"
    )
    cached = ", ".join(report["data_cached"]) or "nothing yet"
    print(f"Data      : {report['data_dir']} holds {cached}")
    for source in report["at_hand"]:
        print(f"            and at hand: {source}")
    weights = report["weights"]
    have = [arch for arch, ok in weights.items() if ok]
    missing = [arch for arch, ok in weights.items() if not ok]
    print(f"Weights   : ImageNet weights on disk for {', '.join(have) or 'none'}")
    if missing:
        print(f"            not cached yet (downloaded on first use): {', '.join(missing)}")
    if report["device"] == "cpu" and profile.name != "smoke":
        print(
            f"Hint      : no GPU here. For a quick first pass set {PROFILE_ENV}=smoke "
            "(seconds per notebook); on Colab choose Runtime → Change runtime type → GPU."
        )
    return profile
