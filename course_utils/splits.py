"""Splits that keep each lesion or patient on one side, and a check for leakage between splits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

SCHEMES = ("60/20/20", "80/20")


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, scheme: str = "60/20/20", seed: int = 0
) -> dict[str, np.ndarray]:
    """Stratified split by group: every image of a lesion/patient lands in the same split.

    "60/20/20" gives train/val/test (the seed's CNN protocol), "80/20" train/test (its trees).
    Returns sorted index arrays per split.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown split scheme {scheme!r}. Choose one of: {', '.join(SCHEMES)}.")
    labels, groups = np.asarray(labels).reshape(-1), np.asarray(groups).reshape(-1)
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels but {len(groups)} groups.")
    everything = np.arange(len(labels))
    # One fold of five is 20 %: the test set. For 60/20/20, one fold of four of the rest is val.
    rest, test = _one_fold(everything, labels, groups, 5, seed)
    if scheme == "80/20":
        return {"train": rest, "test": test}
    train, val = _one_fold(rest, labels, groups, 4, seed)
    return {"train": train, "val": val, "test": test}


def _one_fold(
    index: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split `index` into (the other folds, one fold) of a stratified group k-fold."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    keep, held_out = next(splitter.split(index, labels[index], groups[index]))
    return np.sort(index[keep]), np.sort(index[held_out])


def random_split(
    labels: np.ndarray, scheme: str = "60/20/20", seed: int = 0
) -> dict[str, np.ndarray]:
    """The same split by image, ignoring groups: what leaks when one lesion has several images."""
    labels = np.asarray(labels).reshape(-1)
    return grouped_split(labels, np.arange(len(labels)), scheme, seed)


def image_hashes(images: np.ndarray) -> np.ndarray:
    """A content hash per image: equal hashes mean byte-identical images."""
    return np.array(
        [hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() for image in images]
    )


def check_leakage(
    splits: Mapping[str, np.ndarray],
    groups: np.ndarray | None = None,
    images: np.ndarray | None = None,
) -> pd.DataFrame:
    """For every pair of splits: the groups they share and the identical images they share."""
    hashes = image_hashes(images) if images is not None else None
    names, rows = list(splits), []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            row = {"splits": f"{first} / {second}"}
            if groups is not None:
                shared = np.intersect1d(groups[splits[first]], groups[splits[second]])
                row["shared groups"] = len(shared)
                row["images in shared groups"] = int(
                    np.isin(groups[splits[first]], shared).sum()
                    + np.isin(groups[splits[second]], shared).sum()
                )
            if hashes is not None:
                duplicates = np.intersect1d(hashes[splits[first]], hashes[splits[second]])
                row["identical images"] = len(duplicates)
            rows.append(row)
    return pd.DataFrame(rows).set_index("splits")
