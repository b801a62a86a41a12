"""Small copies of the real archives, in their exact layouts, from real pixels that ship offline.

`build(folder)` writes a mirror (the layout COURSE_MIRROR expects, the same as data/):

    ham10000/HAM10000_images_part_{1,2}.zip, HAM10000_metadata.csv        Harvard Dataverse
    ham10000/ISIC2018_Task3_Training_{Input,GroundTruth}.zip, …_LesionGroupings.csv   ISIC 2018
    chest_xray/ChestXRay2017.zip                                          Mendeley (Kermany)
    medmnist/dermamnist_64.npz, pneumoniamnist_64.npz                     Zenodo (MedMNIST+)
    checksums.json   the fixtures' md5/sha256/size, standing in for the published ones

The pictures are photographs and micrographs from scikit-image and scikit-learn (not patient
data), cropped, flipped and resized to the real files' sizes: HAM10000's 600×450 JPEGs, and
radiographs from about 400 to 2,900 px wide, mostly greyscale, some RGB.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_images

from course_utils.data import DERMA_CLASSES

# Images per class: HAM10000's imbalance, shrunk, with enough of each class for grouped splits.
DERMA_COUNTS = {"akiec": 12, "bcc": 14, "bkl": 20, "df": 10, "mel": 20, "nv": 60, "vasc": 10}
# (split, class): images, as in ChestXRay2017's train/test folders (no val folder).
XRAY_COUNTS = {("train", "NORMAL"): 30, ("train", "PNEUMONIA"): 60}
XRAY_COUNTS |= {("test", "NORMAL"): 16, ("test", "PNEUMONIA"): 24}
# Sizes Kermany's radiographs have; the first two broke decoding at 64 and 128 px once.
XRAY_SIZES = [(1300, 1000), (1857, 1317), (2916, 2583), (412, 384), (1024, 1024), (2090, 1858)]
LOCALIZATIONS = ("back", "lower extremity", "trunk", "upper extremity", "abdomen", "face")


def _colour_pictures() -> list[np.ndarray]:
    names = ("astronaut", "chelsea", "coffee", "retina", "immunohistochemistry", "rocket")
    pictures = [getattr(skimage.data, name)() for name in names]
    return pictures + [skimage.data.hubble_deep_field(), *load_sample_images().images]


def _grey_pictures() -> list[np.ndarray]:
    names = ("camera", "moon", "brick", "grass", "gravel", "cell", "clock", "coins")
    return [getattr(skimage.data, name)() for name in names]


def _view(picture: np.ndarray, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A random crop of `picture` (flipped half the time) resized to width×height."""
    h, w = picture.shape[:2]
    scale = rng.uniform(0.5, 1.0)
    ch, cw = max(int(h * scale), 8), max(int(w * scale), 8)
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = picture[top : top + ch, left : left + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return Image.fromarray(np.ascontiguousarray(crop)).resize((width, height))


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():  # a fixed date: the same bytes on every build
            archive.writestr(zipfile.ZipInfo(name, date_time=(2018, 1, 1, 0, 0, 0)), data)


def _ham10000(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, bytes]]:
    """HAM10000's metadata table and its JPEGs (600×450), one picture family per class."""
    pictures = _colour_pictures()
    rows, images = [], {}
    ids = rng.permutation(sum(DERMA_COUNTS.values())) + 24306  # ISIC_0024306 onwards
    lesion = 0
    for c, (dx, count) in enumerate(DERMA_COUNTS.items()):
        left = count
        while left:  # about 1.3 images per lesion, as in HAM10000 (10,015 images, 7,470 lesions)
            per_lesion = min(left, int(rng.choice([1, 1, 1, 2, 3])))
            lesion += 1
            for _ in range(per_lesion):
                image_id = f"ISIC_{ids[len(rows)]:07d}"
                picture = pictures[(c + len(rows) % 2 * 7) % len(pictures)]
                images[image_id] = _jpeg(_view(picture, 600, 450, rng))
                rows.append(
                    {
                        "lesion_id": f"HAM_{lesion:07d}",
                        "image_id": image_id,
                        "dx": dx,
                        "dx_type": rng.choice(["histo", "follow_up", "consensus", "confocal"]),
                        "age": np.nan if rng.random() < 0.05 else float(rng.integers(1, 18) * 5),
                        "sex": rng.choice(["male", "female", "unknown"], p=[0.5, 0.45, 0.05]),
                        "localization": rng.choice(LOCALIZATIONS),
                        "dataset": rng.choice(["vidir_modern", "rosendahl", "vidir_molemax"]),
                    }
                )
            left -= per_lesion
    return pd.DataFrame(rows), images


def _dataverse(folder: Path, table: pd.DataFrame, images: dict[str, bytes]) -> None:
    """The two image zips (JPEGs at the top level, split by id) and the metadata CSV."""
    names = sorted(images)
    half = len(names) // 2
    for part, chosen in ((1, names[:half]), (2, names[half:])):
        _zip(folder / f"HAM10000_images_part_{part}.zip", {f"{n}.jpg": images[n] for n in chosen})
    table.to_csv(folder / "HAM10000_metadata.csv", index=False)


def _isic(folder: Path, table: pd.DataFrame, images: dict[str, bytes]) -> None:
    """ISIC 2018 Task 3's training input, one-hot ground truth and lesion groupings."""
    notes = {
        "ATTRIBUTION.txt": b"HAM10000 Dataset: (c) by ViDIR Group\n",
        "LICENSE.txt": b"CC-BY-NC\n",
    }
    inputs = "ISIC2018_Task3_Training_Input"
    members = {f"{inputs}/{n}.jpg": data for n, data in sorted(images.items())}
    _zip(folder / f"{inputs}.zip", members | {f"{inputs}/{k}": v for k, v in notes.items()})
    table = table.sort_values("image_id")
    truth = pd.DataFrame({"image": table["image_id"]})
    for dx in ("mel", "nv", "bcc", "akiec", "bkl", "df", "vasc"):  # ISIC's column order
        truth[dx.upper()] = (table["dx"] == dx).astype(float).to_numpy()
    answers = "ISIC2018_Task3_Training_GroundTruth"
    csv = truth.to_csv(index=False).encode()
    members = {f"{answers}/{answers}.csv": csv} | {f"{answers}/{k}": v for k, v in notes.items()}
    _zip(folder / f"{answers}.zip", members)
    groupings = table.rename(columns={"image_id": "image", "dx_type": "diagnosis_confirm_type"})
    groupings[["image", "lesion_id", "diagnosis_confirm_type"]].to_csv(
        folder / "ISIC2018_Task3_Training_LesionGroupings.csv", index=False
    )


def _chest_xray(path: Path, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """ChestXRay2017.zip: chest_xray/{train,test}/{NORMAL,PNEUMONIA}/ with macOS junk."""
    grey, colour = _grey_pictures(), _colour_pictures()
    members, kept, person, normal = {}, [], 0, 114
    for (split, label), count in XRAY_COUNTS.items():
        names = []
        while len(names) < count:
            if label == "NORMAL":  # IM-XXXX-YYYY.jpeg; the second set is NORMAL2-IM-XXXX-YYYY
                normal += 1
                prefix = "NORMAL2-IM" if rng.random() < 0.3 else "IM"
                names += [
                    f"{prefix}-{normal:04d}-{k + 1:04d}.jpeg" for k in range(rng.integers(1, 3))
                ]
            else:  # personN_bacteria_M.jpeg / personN_virus_M.jpeg
                person += 1
                kind = rng.choice(["bacteria", "virus"])
                names += [
                    f"person{person}_{kind}_{person * 3 + k}.jpeg"
                    for k in range(rng.integers(1, 4))
                ]
        for name in names[:count]:
            index = len(kept)
            width, height = XRAY_SIZES[index % len(XRAY_SIZES)]
            if index >= len(XRAY_SIZES):  # after the fixed sizes, the spread of widths
                width = int(rng.integers(400, 2917))
                height = int(width * rng.uniform(0.65, 1.05))
            rgb = index % 16 == 5  # 283 of 5,856 real ones are RGB
            picture = colour[index % len(colour)] if rgb else grey[index % len(grey)]
            image = _view(picture, width, height, rng)
            entry = f"chest_xray/{split}/{label}/{name}"
            members[entry] = _jpeg(image)
            kept.append((entry, np.asarray(image.convert("L").resize((64, 64)))))
    for junk in ("chest_xray/.DS_Store", "chest_xray/train/.DS_Store"):
        members[junk] = b"\0\0\0\1Bud1" + bytes(64)
    first = next(iter(members))
    members[f"__MACOSX/{Path(first).parent}/._{Path(first).name}"] = b"\0\5\26\7" + bytes(80)
    _zip(path, members)
    return kept


def _medmnist(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """A MedMNIST+ npz: {train,val,test}_{images,labels}, labels N×1, uint8 images."""
    order = np.random.default_rng(0).permutation(len(labels))
    cuts = np.split(order, [int(0.7 * len(order)), int(0.8 * len(order))])
    arrays = {}
    for split, index in zip(("train", "val", "test"), cuts, strict=True):
        arrays[f"{split}_images"] = images[index]
        arrays[f"{split}_labels"] = labels[index].reshape(-1, 1).astype(np.uint8)
    members = {}
    for key, array in arrays.items():  # what np.savez_compressed writes, with a fixed date
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        members[f"{key}.npy"] = buffer.getvalue()
    _zip(path, members, zipfile.ZIP_DEFLATED)


def _checksums(folder: Path) -> dict[str, dict]:
    """md5, sha256 and size of each file that has a published checksum to stand in for."""
    table = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".zip", ".csv", ".npz") and "ISIC2018" not in path.name:
            data = path.read_bytes()
            table[path.name] = {
                "md5": hashlib.md5(data).hexdigest(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
    return table


def build(folder: Path) -> dict[str, dict]:
    """Write every fixture archive under `folder` (the mirror layout); returns the checksums.

    Files are written in a private folder first and renamed into place one by one, so a mirror
    already serving `folder` (another rehearsal running) never sends a half-written file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        checksums = _write_all(staging)
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = folder / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return checksums


def _write_all(folder: Path) -> dict[str, dict]:
    rng = np.random.default_rng(2018)
    table, images = _ham10000(rng)
    _dataverse(folder / "ham10000", table, images)
    _isic(folder / "ham10000", table, images)
    small = np.stack(
        [np.asarray(Image.open(io.BytesIO(images[i])).resize((64, 64))) for i in table["image_id"]]
    )
    _medmnist(
        folder / "medmnist" / "dermamnist_64.npz",
        small,
        table["dx"].map(DERMA_CLASSES.index).to_numpy(),
    )
    xrays = _chest_xray(folder / "chest_xray" / "ChestXRay2017.zip", rng)
    labels = np.array(["PNEUMONIA" in entry for entry, _ in xrays], dtype=int)
    _medmnist(
        folder / "medmnist" / "pneumoniamnist_64.npz", np.stack([x for _, x in xrays]), labels
    )
    checksums = _checksums(folder)
    (folder / "checksums.json").write_text(json.dumps(checksums, indent=1))
    return checksums
