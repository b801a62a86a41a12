"""Run profiles, device choice, the data folder and seeding: what every other module may ask."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PROFILE_ENV = "COURSE_PROFILE"
DATA_DIR_ENV = "COURSE_DATA_DIR"
# The course's home, set here only: the Colab badges and the Colab install cell point at it.
REPO = "tl-medical/transfer-learning-medical-images"
REPO_URL = f"https://github.com/{REPO}"


@dataclass(frozen=True)
class Profile:
    """The sizes a notebook asks for; the notebook's code is the same in every profile."""

    name: str
    image_size: int  # pixels per side fed to the networks
    max_samples: int | None  # images per dataset (None: all of them)
    epochs: int  # upper bound; early stopping may end sooner
    batch_size: int
    patience: int  # early-stopping patience in epochs
    allow_offline_sample: bool  # may the generated sample stand in for real data/weights?
    purpose: str
    seeds: int = 1  # training runs per headline comparison (mean ± sd when more than one)


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", 32, 420, 2, 32, 1, True, "CI and a first look: seconds per notebook"),
    "laptop": Profile(
        "laptop", 64, 2000, 5, 64, 2, False, "real data at CPU size: 1–30 min per notebook"
    ),
    "workshop": Profile(
        "workshop", 128, None, 8, 64, 3, False, "a Colab T4 within a teaching slot", seeds=3
    ),
    "full": Profile(
        "full", 224, None, 50, 32, 5, False, "the seed protocol: 224 px, all data", seeds=3
    ),
}


def default_profile() -> tuple[str, str]:
    """The profile used when COURSE_PROFILE is unset, and why."""
    if torch.cuda.is_available():
        return "workshop", "a CUDA GPU is present"
    return "laptop", "no CUDA GPU was found"


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else $COURSE_PROFILE, else the default for this machine."""
    name = name or os.environ.get(PROFILE_ENV) or default_profile()[0]
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"Unknown course profile {name!r}. Valid profiles: {', '.join(PROFILES)}. "
            f"Set it with e.g. `export {PROFILE_ENV}=smoke` before starting Jupyter."
        )
    return PROFILES[key]


def profile_reason() -> str:
    """Say where the active profile came from."""
    if os.environ.get(PROFILE_ENV):
        return f"set by ${PROFILE_ENV}"
    return f"default because {default_profile()[1]}"


def get_device() -> torch.device:
    """The best available device: cuda, then Apple's mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def data_dir() -> Path:
    """The data cache: $COURSE_DATA_DIR, else the checkout's `data/`, else ~/course_data."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parent.parent
    return (
        checkout / "data"
        if (checkout / "pyproject.toml").is_file()
        else Path.home() / "course_data"
    )


def seed_everything(seed: int = 42) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the legacy global generator that libraries still use)
    torch.manual_seed(seed)  # also seeds every CUDA device
