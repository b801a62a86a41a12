"""MedMNIST+: DermaMNIST and PneumoniaMNIST files at 28 to 224 px, with official splits."""

from __future__ import annotations

import numpy as np

from course_utils.catalog import DATASETS, SPLITS
from course_utils.config import data_dir
from course_utils.data import resize_images
from course_utils.download import RemoteFile, download
from course_utils.imageset import ImageSet

MEDMNIST_SIZES = (28, 64, 128, 224)


def medmnist_file(name: str, size: int) -> RemoteFile:
    """The DermaMNIST / PneumoniaMNIST file at `size` px (URL and md5 from the medmnist package)."""
    from medmnist import INFO

    flag = DATASETS[name].medmnist_flag
    suffix = "" if size == 28 else f"_{size}"
    file_name = f"{flag}{suffix}.npz"
    return RemoteFile(
        file_name,
        (INFO[flag][f"url{suffix}"],),
        md5=INFO[flag][f"MD5{suffix}"],
        mirror_path=f"medmnist/{file_name}",
    )


def load_medmnist(name: str, size: int) -> ImageSet:
    """DermaMNIST or PneumoniaMNIST with official splits, from the smallest file ≥ `size` px."""
    native = next((s for s in MEDMNIST_SIZES if s >= size), MEDMNIST_SIZES[-1])
    remote = medmnist_file(name, native)
    path = download(remote, data_dir() / "medmnist")
    with np.load(path) as npz:
        missing = [
            f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in npz
        ]
        if missing:
            path.unlink()
            raise ValueError(
                f"{path.name} lacks {missing}; it was deleted: run again to download it."
            )
        parts = [(s, npz[f"{s}_images"], npz[f"{s}_labels"].reshape(-1)) for s in SPLITS]
    images = resize_images(np.concatenate([p[1] for p in parts]), size)
    info = DATASETS[name]
    resized = f", resized to {size} px" if native != size else ""
    return ImageSet(
        images=images,
        labels=np.concatenate([p[2] for p in parts]).astype(np.int64),
        class_names=info.class_names,
        # MedMNIST carries no lesion or patient ids: every image is its own group.
        groups=np.arange(len(images)).astype(str),
        source=f"{info.medmnist_title} (MedMNIST+, {native} px file{resized})",
        official_split=np.concatenate([[split] * len(labels) for split, _, labels in parts]),
    )
