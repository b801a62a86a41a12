"""`load_dataset`: which source a notebook gets, and the table of sources it can choose from.

Each part lives in a module of its own: catalog (what each dataset is), imageset (ImageSet),
decode (image files to arrays), archives (the original archives and their decoded cache),
medmnist_plus (MedMNIST+ and DermaMNIST-C) and sample (the generated offline sample). The names
notebooks and tests import from here are re-exported; patch a module attribute where it is
defined.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from course_utils import kaggle, packs
from course_utils.archives import HAM10000_COLUMNS, prepare_original, prepared_path, xray_patient
from course_utils.catalog import (
    DATASETS,
    DERMA,
    DERMAMNIST_C_CITE,
    DERMAMNIST_C_DOWNLOAD,
    DERMAMNIST_C_FILES,
    MEDMNIST_CITE,
    MEDMNIST_RECORD,
)
from course_utils.config import Profile
from course_utils.data import check_integer
from course_utils.decode import decode_image, decode_images
from course_utils.download import DownloadError
from course_utils.imageset import ImageSet
from course_utils.medmnist_plus import (
    MEDMNIST_SIZES,
    load_dermamnist_c,
    load_medmnist,
    medmnist_file,
)
from course_utils.sample import load_sample

__all__ = [
    "HAM10000_COLUMNS",
    "MEDMNIST_SIZES",
    "NAMES",
    "SAMPLE_IMAGES_FOR_ALL",
    "SOURCES",
    "SOURCE_KINDS",
    "ImageSet",
    "decode_image",
    "decode_images",
    "limit_samples",
    "load_dataset",
    "load_dermamnist_c",
    "load_medmnist",
    "load_sample",
    "medmnist_file",
    "prepare_original",
    "xray_patient",
]

NAMES = tuple(DATASETS)
SOURCE_KINDS = ("auto", "original", "medmnist", "dermamnist_c", "sample")
# Sources that exist for one dataset only: DermaMNIST-C is a corrected DermaMNIST (HAM10000).
ONLY_FOR = {"dermamnist_c": DERMA.name}
# The generated sample cannot give "all images": where the profile asks for every one
# (max_samples=None, as in the workshop and full profiles) it is generated at this many, as many
# as the laptop profile takes: every class shows up in every split, in seconds even at 224 px.
SAMPLE_IMAGES_FOR_ALL = 2000


def _sources() -> pd.DataFrame:
    """Each dataset's original archive, its MedMNIST+ version and (HAM10000) DermaMNIST-C."""
    rows = []
    for info in DATASETS.values():
        medmnist = f"{info.medmnist_title} ({MEDMNIST_RECORD})"
        rows.append((info.name, "original", info.files, info.download, info.licence, info.cite))
        rows.append(
            (info.name, "medmnist", medmnist, info.medmnist_download, info.licence, MEDMNIST_CITE)
        )
        if info is DERMA:  # the same licence as HAM10000 (CC BY-NC 4.0)
            corrected = (DERMAMNIST_C_FILES, DERMAMNIST_C_DOWNLOAD, info.licence, DERMAMNIST_C_CITE)
            rows.append((info.name, "dermamnist_c", *corrected))
    return pd.DataFrame(rows, columns=["name", "source", "files", "download", "licence", "cite"])


SOURCES = _sources()


def limit_samples(data: ImageSet, max_samples: int | None, seed: int = 0) -> ImageSet:
    """At most `max_samples` images, taking whole groups in random order (no lesion is cut)."""
    if max_samples is None or len(data) <= max_samples:
        return data
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(data.groups, return_inverse=True)
    order = rng.permutation(len(unique))
    sizes = np.bincount(inverse)[order]
    chosen = order[: int(np.searchsorted(np.cumsum(sizes), max_samples, side="right"))]
    return data.subset(np.flatnonzero(np.isin(inverse, chosen)))


def _check_arguments(name: str, source: str, on_error: str, max_samples: int | None) -> None:
    """Raise ValueError, listing the valid choices, for a name, source or option that is not one."""
    if name not in NAMES:
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(NAMES)}.")
    if source not in SOURCE_KINDS:
        raise ValueError(f"Unknown source {source!r}. Choose one of: {', '.join(SOURCE_KINDS)}.")
    if ONLY_FOR.get(source, name) != name:
        raise ValueError(
            f"source={source!r} exists for {ONLY_FOR[source]!r} only (it is a corrected "
            f"DermaMNIST); for {name!r} choose one of: auto, original, medmnist, sample."
        )
    if on_error not in ("stop", "skip"):
        raise ValueError(
            f"on_error must be 'stop' (an unreadable image is an error) or 'skip' (it is left "
            f"out), got {on_error!r}."
        )
    if max_samples is not None and max_samples != -1:  # -1: the profile's; None: all images
        check_integer(max_samples, "max_samples", 1, "images; None: all, -1: the profile's")


def load_dataset(
    name: str,
    source: str = "auto",
    image_size: int | None = None,
    max_samples: int | None = -1,
    *,
    profile: Profile,
    on_error: str = "stop",
    seed: int = 0,
) -> ImageSet:
    """Images, labels, class names and groups of "derma" (HAM10000) or "xray" (chest X-ray).

    source: "original" (the published archives, decoded once into data/prepared/), "medmnist"
    (MedMNIST+ files with official splits by image, every image its own group), "dermamnist_c"
    ("derma" only: the corrected DermaMNIST, official splits by lesion, groups its lesion ids),
    "sample" (generated, offline) or "auto": the original when at hand (prepared, attached on
    Kaggle, or in the pack $COURSE_MIRROR serves), else MedMNIST+. When the real data cannot be
    downloaded, the smoke profile falls back to the sample; the other profiles raise
    DownloadError with manual steps.
    image_size and max_samples default to the profile's (max_samples=None: all images).
    Prints which source it used.
    """
    _check_arguments(name, source, on_error, max_samples)
    size = profile.image_size if image_size is None else image_size
    size = check_integer(size, "image_size", 1, "pixels per side; None: the profile's")
    limit = profile.max_samples if max_samples == -1 else max_samples
    if source == "auto":
        cache = prepared_path(name, size)
        at_hand = cache.is_file() or kaggle.is_attached(name) or packs.offers(cache)
        source = "original" if at_hand else "medmnist"
    try:
        if source == "original":
            data = prepare_original(name, size, on_error)
        elif source == "medmnist":
            data = load_medmnist(name, size)
        elif source == "dermamnist_c":
            data = load_dermamnist_c(size)
        else:
            data = load_sample(name, size, limit or SAMPLE_IMAGES_FOR_ALL, seed)
    except DownloadError as err:
        if not profile.allow_offline_sample:
            raise
        print(f"No real data could be had ({err.reason()}).")
        data = load_sample(name, size, limit or SAMPLE_IMAGES_FOR_ALL, seed)
    data = limit_samples(data, limit, seed)
    print(f"Using {data.source}: {len(data):,} images, {len(np.unique(data.groups)):,} groups.")
    return data
