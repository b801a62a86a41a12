"""MedMNIST-format npz files with official splits: MedMNIST+ (DermaMNIST and PneumoniaMNIST at
28 to 224 px) and DermaMNIST-C, the corrected DermaMNIST, whose lesions come from its metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from course_utils.catalog import (
    DATASETS,
    DERMA,
    DERMA_CLASSES,
    DERMAMNIST_C_RECORD_URL,
    DERMAMNIST_C_SIZES,
    DERMAMNIST_C_TITLE,
    SPLITS,
)
from course_utils.config import data_dir
from course_utils.data import resize_images
from course_utils.download import DownloadError, RemoteFile, download, manual_steps
from course_utils.imageset import ImageSet

MEDMNIST_SIZES = (28, 64, 128, 224)
RESIZE_CHUNK = 512  # images resized at a time: 10,015 at 224 px in float would need 6 GB

# DermaMNIST-C (Abhishek, Jain & Hamarneh 2025; Zenodo record 12739457): the six arrays of a
# MedMNIST file, split so that no lesion (nor one of the authors' 18 near-duplicate pairs) is in
# two splits. The npz holds no lesion ids: they come from the metadata CSV the authors built it
# from (their GitHub repository, pinned to a commit), whose rows of each split are the npz's rows
# in order (the authors' CreateNPZfromCSV notebook); the loader checks this row by row.
DERMAMNIST_C_NPZ = {
    size: RemoteFile(
        name,
        (f"https://zenodo.org/records/12739457/files/{name}?download=1",),
        md5=md5,
        mirror_path=f"medmnist/{name}",
    )
    for size, name, md5 in (
        (28, "dermamnist_corrected_28.npz", "96e2862980877d45d9cacb5c25de6950"),
        (224, "dermamnist_corrected_224.npz", "84920fb70c83b234c295b6f0d4ae2bc0"),
    )
}
_PINNED = "426d79eba22f6b0d3bbf7e747f7d56dc647ced87"  # the commit that added this CSV
_AUTHORS = "https://raw.githubusercontent.com/kakumarabhishek/Corrected-Skin-Image-Datasets"
_METADATA = (
    "DermaMNIST/DermaMNIST_Analysis/CSV_files/combined_metadata_corrected-HAM10000_corrected.csv"
)
DERMAMNIST_C_COLUMNS = ("lesion_id", "image_id", "dx", "split")
DERMAMNIST_C_METADATA = RemoteFile(
    Path(_METADATA).name,
    tuple(f"{_AUTHORS}/{ref}/{_METADATA}" for ref in (_PINNED, "main")),
    columns=DERMAMNIST_C_COLUMNS,  # no checksum is published: its header and last line are checked
    mirror_path=f"medmnist/{Path(_METADATA).name}",
)
# HAM10000's near-duplicates under two lesion ids, found by the same authors
# (newly_discovered_duplicates.csv in their repository): each pair is made one group.
NEAR_DUPLICATES = (
    ("ISIC_0033481", "ISIC_0033421"), ("ISIC_0033556", "ISIC_0032634"),
    ("ISIC_0029152", "ISIC_0033173"), ("ISIC_0029036", "ISIC_0027027"),
    ("ISIC_0027820", "ISIC_0028209"), ("ISIC_0027689", "ISIC_0032647"),
    ("ISIC_0030906", "ISIC_0024879"), ("ISIC_0033391", "ISIC_0034186"),
    ("ISIC_0025226", "ISIC_0030074"), ("ISIC_0026087", "ISIC_0025664"),
    ("ISIC_0024736", "ISIC_0029748"), ("ISIC_0024770", "ISIC_0027811"),
    ("ISIC_0027162", "ISIC_0029061"), ("ISIC_0024602", "ISIC_0032283"),
    ("ISIC_0029625", "ISIC_0024629"), ("ISIC_0030000", "ISIC_0031392"),
    ("ISIC_0024437", "ISIC_0031299"), ("ISIC_0033374", "ISIC_0033417"),
)  # fmt: skip


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


def _read_npz(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(split, images, labels) for train, val and test; a file lacking one is deleted."""
    with np.load(path) as npz:
        missing = [
            f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in npz
        ]
        if missing:
            path.unlink()
            raise ValueError(
                f"{path.name} lacks {missing}; it was deleted: run again to download it."
            )
        return [(s, npz[f"{s}_images"], npz[f"{s}_labels"].reshape(-1)) for s in SPLITS]


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    """`images` at size×size, RESIZE_CHUNK at a time (memory stays near the uint8 arrays)."""
    if images.shape[1:3] == (size, size):
        return images
    if not len(images):
        return np.empty((0, size, size, *images.shape[3:]), np.uint8)
    chunks = [
        resize_images(images[i : i + RESIZE_CHUNK], size)
        for i in range(0, len(images), RESIZE_CHUNK)
    ]
    return np.concatenate(chunks)


def load_medmnist(name: str, size: int) -> ImageSet:
    """DermaMNIST or PneumoniaMNIST with official splits, from the smallest file ≥ `size` px."""
    native = next((s for s in MEDMNIST_SIZES if s >= size), MEDMNIST_SIZES[-1])
    path = download(medmnist_file(name, native), data_dir() / "medmnist")
    parts = _read_npz(path)
    images = np.concatenate([_resized(p[1], size) for p in parts])
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


def _fetch_in_turn(files: tuple[RemoteFile, ...], folder: Path) -> list[Path]:
    """Each file in turn; when one fails, its steps and those of the files not yet on disk."""
    paths = []
    manual = f"The record {DERMAMNIST_C_RECORD_URL} lists the npz files; the CSV is plain text."
    for i, remote in enumerate(files):
        try:
            paths.append(download(remote, folder, manual=manual))
        except DownloadError as err:
            later = [r for r in files[i + 1 :] if not (folder / r.name).is_file()]
            not_tried = ["not tried: an earlier file of DermaMNIST-C failed"]
            steps = [manual_steps(r, folder, not_tried, manual, verb="get") for r in later]
            raise DownloadError("\n\n".join([err.steps, *steps]), err.problems) from None
    return paths


def _lesions(table: pd.DataFrame) -> np.ndarray:
    """Each image's lesion id; the lesions of a known near-duplicate pair become one group."""
    lesion = dict(zip(table["image_id"], table["lesion_id"], strict=True))
    parent: dict[str, str] = {}

    def root(group: str) -> str:
        while parent.get(group, group) != group:
            group = parent[group]
        return group

    for first, second in NEAR_DUPLICATES:
        if first in lesion and second in lesion and root(lesion[first]) != root(lesion[second]):
            parent[root(lesion[second])] = root(lesion[first])
    return np.array([root(g) for g in table["lesion_id"]], dtype=str)


def _metadata_in_npz_order(
    csv: Path, parts: list[tuple[str, np.ndarray, np.ndarray]]
) -> pd.DataFrame:
    """The CSV's rows in the npz's order (train, val, test); the CSV deleted if they disagree."""
    table = pd.read_csv(csv)
    ordered = pd.concat([table[table["split"] == s] for s in SPLITS], ignore_index=True)
    labels = ordered["dx"].map({c: i for i, c in enumerate(DERMA_CLASSES)})
    expected = np.concatenate([p[2] for p in parts]).astype(np.int64)
    counts = {s: int((table["split"] == s).sum()) for s in SPLITS}
    in_npz = {split: len(labels) for split, _, labels in parts}
    problem = None
    if counts != in_npz:
        problem = f"its splits hold {counts} images, the npz {in_npz}"
    elif labels.isna().any() or not np.array_equal(labels.to_numpy(np.int64), expected):
        problem = "its diagnoses (dx) differ from the npz's labels, row by row"
    if problem:
        csv.unlink()  # the npz passed its md5: the CSV is the wrong one
        raise ValueError(
            f"{csv.name} does not describe the DermaMNIST-C file ({problem}); it was deleted: "
            f"run again to download it afresh (the authors' repository may have changed)."
        )
    return ordered


def load_dermamnist_c(size: int) -> ImageSet:
    """DermaMNIST-C with its official (lesion-disjoint) splits and real lesion groups."""
    native = next((s for s in DERMAMNIST_C_SIZES if s >= size), DERMAMNIST_C_SIZES[-1])
    files = (DERMAMNIST_C_METADATA, DERMAMNIST_C_NPZ[native])  # the small file first
    csv, path = _fetch_in_turn(files, data_dir() / "medmnist")
    parts = _read_npz(path)
    metadata = _metadata_in_npz_order(csv, parts)
    resized = f", resized to {size} px" if native != size else ""
    return ImageSet(
        images=np.concatenate([_resized(p[1], size) for p in parts]),
        labels=np.concatenate([p[2] for p in parts]).astype(np.int64),
        class_names=DERMA.class_names,
        groups=_lesions(metadata),
        source=f"{DERMAMNIST_C_TITLE} (corrected DermaMNIST, {native} px file{resized})",
        official_split=metadata["split"].to_numpy(str),
        metadata=metadata,
    )
