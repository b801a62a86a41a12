"""The real datasets: a registry of sources, decode-once array caches, and `load_dataset`."""

from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from course_utils.config import Profile, data_dir, get_profile
from course_utils.data import DERMA_CLASSES, SPLITS, XRAY_CLASSES, make_sample, resize_images
from course_utils.download import (
    AGAIN,
    DownloadError,
    RemoteFile,
    download,
    manual_steps,
    safe_extract,
)
from course_utils.splits import grouped_split

DATAVERSE = "https://dataverse.harvard.edu/api/access/datafile/"
ISIC_BASES = (
    "https://isic-archive.s3.amazonaws.com/challenges/2018/",
    "https://isic-challenge-data.s3.amazonaws.com/2018/",  # the older address many scripts use
)
MEDMNIST_SIZES = (28, 64, 128, 224)
NAMES = ("derma", "xray")
SOURCE_KINDS = ("auto", "original", "medmnist", "sample")
HAM10000_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")

# HAM10000 from Harvard Dataverse (doi:10.7910/DVN/DBW86T): images in two zips, metadata as CSV.
HAM10000_DATAVERSE = (
    RemoteFile(
        "HAM10000_images_part_1.zip",
        (DATAVERSE + "3172585",),
        md5="4639bfa73ab251610530a97c898e6e46",
        size=1_366_522_108,
        mirror_path="ham10000/HAM10000_images_part_1.zip",
    ),
    RemoteFile(
        "HAM10000_images_part_2.zip",
        (DATAVERSE + "3172584",),
        md5="da43d6cc50f6613013be07e8986b384b",
        size=1_403_566_547,
        mirror_path="ham10000/HAM10000_images_part_2.zip",
    ),
    RemoteFile(
        "HAM10000_metadata.csv",
        (DATAVERSE + "4338392?format=original",),
        md5="8f85fb1aa29d80a2797247e434deb79d",
        size=690_218,
        mirror_path="ham10000/HAM10000_metadata.csv",
    ),
)
# The same 10,015 images from the ISIC 2018 Task 3 training set (no checksums are published).
HAM10000_ISIC = tuple(
    RemoteFile(name, tuple(base + name for base in ISIC_BASES), mirror_path=f"ham10000/{name}")
    for name in (
        "ISIC2018_Task3_Training_Input.zip",
        "ISIC2018_Task3_Training_GroundTruth.zip",
        "ISIC2018_Task3_Training_LesionGroupings.csv",
    )
)
CHEST_XRAY = RemoteFile(
    "ChestXRay2017.zip",
    (
        "https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
        "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded",
    ),
    sha256="13efc055629733dbab07877f8b3c9f81097840dbcdaa326a8542322c2281ce36",
    size=1_235_512_464,
    mirror_path="chest_xray/ChestXRay2017.zip",
)

SOURCES = pd.DataFrame(
    [
        (
            "derma",
            "original",
            "HAM10000 (Harvard Dataverse; ISIC 2018 Task 3 as fallback)",
            "2.8 GB",
            "CC BY-NC 4.0",
            "Tschandl et al., Sci. Data 5:180161 (2018)",
        ),
        (
            "derma",
            "medmnist",
            "DermaMNIST (MedMNIST+, Zenodo 10519652)",
            "19 MB–1 GB",
            "CC BY-NC 4.0",
            "Yang et al., Sci. Data 10:41 (2023)",
        ),
        (
            "xray",
            "original",
            "ChestXRay2017 (Mendeley Data, doi:10.17632/rscbjbr9sj.2)",
            "1.2 GB",
            "CC BY 4.0",
            "Kermany et al., Cell 172(5):1122-1131 (2018)",
        ),
        (
            "xray",
            "medmnist",
            "PneumoniaMNIST (MedMNIST+, Zenodo 10519652)",
            "4 MB–0.3 GB",
            "CC BY 4.0",
            "Yang et al., Sci. Data 10:41 (2023)",
        ),
    ],
    columns=["name", "source", "files", "download", "licence", "cite"],
)


@dataclass
class ImageSet:
    """Images of one dataset with everything a notebook needs to split and label them."""

    images: np.ndarray  # uint8, N×H×W×3 (derma) or N×H×W (x-ray)
    labels: np.ndarray  # int64, N
    class_names: tuple[str, ...]
    groups: np.ndarray  # lesion or patient per image: images of one group stay in one split
    source: str  # which data this really is, e.g. "HAM10000 (original), 64 px"
    official_split: np.ndarray | None = None  # "train"/"val"/"test" where the source has one
    metadata: pd.DataFrame | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{n} {c}"
            for c, n in zip(
                self.class_names,
                np.bincount(self.labels, minlength=len(self.class_names)),
                strict=True,
            )
        )
        return (
            f"ImageSet({self.source}: {len(self)} images {self.images.shape[1:]} "
            f"{self.images.dtype}, {len(np.unique(self.groups))} groups; {counts})"
        )

    def subset(self, index: np.ndarray) -> ImageSet:
        """The images at `index` (metadata and official split follow)."""
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            groups=self.groups[index],
            official_split=None if self.official_split is None else self.official_split[index],
            metadata=None
            if self.metadata is None
            else self.metadata.iloc[index].reset_index(drop=True),
        )

    def resized(self, size: int) -> ImageSet:
        """The same images resized to size×size (e.g. smaller ones for the tree baselines)."""
        if size == self.images.shape[1]:
            return self
        images = resize_images(self.images, size)
        return replace(self, images=images, source=f"{self.source}, resized to {size} px")

    def split(self, scheme: str = "60/20/20", seed: int = 0) -> dict[str, ImageSet]:
        """Grouped stratified "60/20/20" or "80/20", or the source's "official" split."""
        if scheme == "official":
            if self.official_split is None:
                raise ValueError(f"{self.source} has no official split; use '60/20/20' or '80/20'.")
            parts = {s: np.flatnonzero(self.official_split == s) for s in SPLITS}
            return {s: self.subset(i) for s, i in parts.items() if len(i)}
        return {
            s: self.subset(i)
            for s, i in grouped_split(self.labels, self.groups, scheme, seed).items()
        }


# Decoding -------------------------------------------------------------------------------------


def decode_image(path: str, size: int, grey: bool) -> tuple[np.ndarray, int, int]:
    """Read one image file, centre-crop it square, resize to size×size; also its original size."""
    mode = "L" if grey else "RGB"
    with Image.open(path) as image:
        width, height = image.size
        # JPEG: libjpeg decodes at 1/2, 1/4 or 1/8 scale; draft() says where the original lies in
        # the reduced image, (0, 0, width/k, height/k): each side rounded up holds a partial block.
        drafted = image.draft(mode, (size, size))
        _, _, w, h = drafted[1] if drafted else (0, 0, width, height)
        image = image.convert(mode)
        side = min(width, height)  # the centre square in original pixels, mapped axis by axis
        left, top = (width - side) / 2, (height - side) / 2
        x, y = w / width, h / height  # exactly 1/k, so the box stays inside the reduced image
        box = (left * x, top * y, (left + side) * x, (top + side) * y)
        image = image.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
        return np.asarray(image), width, height


def _decode_or_error(job: tuple[str, int, bool]) -> tuple[np.ndarray, int, int] | tuple[str, bool]:
    """The decoded image, or (an error line naming the file, whether PIL could not read it)."""
    try:
        return decode_image(*job)
    except (UnidentifiedImageError, OSError) as err:  # not an image, or a truncated one
        return f"{Path(job[0]).name}: {type(err).__name__}: {err}", True
    except Exception as err:  # noqa: BLE001 (a bug here, reported to the caller by file name)
        return f"{Path(job[0]).name}: {type(err).__name__}: {err}", False


def decode_images(
    paths: list[str], size: int, grey: bool, on_error: str = "stop", workers: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode files in parallel into (images, kept mask, original width×height of those kept).

    on_error="stop" raises listing every unreadable file; "skip" prints them and leaves them out.
    """
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip' (got {on_error!r}).")
    jobs = [(str(p), size, grey) for p in paths]
    workers = workers or os.cpu_count() or 1
    bar = {"total": len(jobs), "unit": "img", "desc": f"decoding at {size} px"}
    if workers > 1 and len(jobs) > 64:
        with ProcessPoolExecutor(workers) as pool:
            results = list(tqdm(pool.map(_decode_or_error, jobs, chunksize=64), **bar))
    else:
        results = [_decode_or_error(job) for job in tqdm(jobs, **bar)]
    failed = [r for r in results if isinstance(r[0], str)]  # (error line, unreadable file?)
    errors = [line for line, _ in failed]
    if errors and on_error == "stop":
        advice = []
        if any(unreadable for _, unreadable in failed):
            advice.append(
                "UnidentifiedImageError/OSError: PIL cannot read the file, so the archive looks"
                " damaged: delete it and download it again, or pass on_error='skip' to leave"
                " such files out."
            )
        if not all(unreadable for _, unreadable in failed):
            advice.append(
                "Any other error is a bug in course_utils's decoding, not a damaged download"
                " (downloading again will not help): please report it with the file name and"
                " the image's width×height."
            )
        raise ValueError(
            f"{len(errors)} image(s) could not be decoded:\n  "
            + "\n  ".join(errors[:20])
            + "\n"
            + "\n".join(advice)
        )
    if errors:
        print(f"Skipped {len(errors)} unreadable image(s):\n  " + "\n  ".join(errors[:20]))
    kept = np.array([not isinstance(r[0], str) for r in results], dtype=bool)
    good = [r for r in results if not isinstance(r[0], str)]
    empty = np.zeros((0, size, size) if grey else (0, size, size, 3), np.uint8)
    images = np.stack([r[0] for r in good]) if good else empty
    return images, kept, np.array([r[1:] for r in good], dtype=int).reshape(-1, 2)


# The original archives ------------------------------------------------------------------------


def _fetch_all(files: tuple[RemoteFile, ...], folder: Path, manual: str) -> list[Path]:
    """Every file of one source; if one fails, one error with the steps for each missing file.

    After a failure the source's other files are not tried (on a bad network each try can take
    minutes), but those not on disk yet are listed with their manual steps too.
    """
    paths, failures, problems = [], [], []
    for remote in files:
        if failures and not (folder / remote.name).is_file():
            problem = ["not tried: an earlier file from this source failed"]
            failures.append(manual_steps(remote, folder, problem, manual, verb="get"))
            continue
        try:
            paths.append(download(remote, folder, manual=manual))
        except DownloadError as err:
            failures.append(str(err))
            problems += err.problems
    if failures:
        count = f"{len(failures)} of {len(files)} files" if len(files) > 1 else "the file"
        steps = "\n\n".join(f.replace(f"\n{AGAIN}", "") for f in failures)
        raise DownloadError(f"Missing {count}:\n\n{steps}\n{AGAIN}", problems)
    return paths


def _ham10000_table(folder: Path) -> tuple[pd.DataFrame, Path]:
    """HAM10000's metadata and its image folder: Dataverse files first, ISIC 2018 as fallback."""
    manual = (
        f"Dataverse may ask you to accept its terms first: open "
        f"https://doi.org/10.7910/DVN/DBW86T, download the files and put them in {folder}."
    )
    try:
        *zips, csv = _fetch_all(HAM10000_DATAVERSE, folder, manual)
        images = folder / "HAM10000_images"
        if not images.is_dir():
            for archive in zips:
                safe_extract(archive, folder / archive.stem)
            _flatten([folder / z.stem for z in zips], images)
        return _read_ham10000_metadata(csv), images
    except DownloadError as dataverse_error:
        try:
            archive, truth_zip, groupings = _fetch_all(HAM10000_ISIC, folder, manual="")
        except DownloadError as isic_error:
            raise DownloadError(
                f"{dataverse_error}\n\nThe ISIC 2018 copy failed too:\n{isic_error}",
                dataverse_error.problems + isic_error.problems,
            ) from None
        images = folder / "ISIC2018_images"
        if not images.is_dir():
            _flatten([safe_extract(archive, folder / archive.stem)], images)
        truth = safe_extract(truth_zip, folder / truth_zip.stem)
        return _read_isic_metadata(next(truth.rglob("*.csv")), groupings), images


def _flatten(folders: list[Path], target: Path) -> None:
    """Move every .jpg under `folders` into `target` (HAM10000's zips nest differently)."""
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        for path in folder.rglob("*.jpg"):
            os.replace(path, partial / path.name)
    os.replace(partial, target)


def _require_columns(table: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        path.unlink()  # a wrong file must not stay in the cache
        raise ValueError(
            f"{path.name} lacks the column(s) {missing} (it has {list(table.columns)}). It is not "
            f"the published file (Dataverse serves a converted .tab unless asked for "
            f"?format=original); it was deleted: run again to download it afresh."
        )


def _read_ham10000_metadata(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    _require_columns(table, HAM10000_COLUMNS, path)
    return table.sort_values("image_id").reset_index(drop=True)


def _read_isic_metadata(truth_csv: Path, groupings_csv: Path) -> pd.DataFrame:
    """Rebuild HAM10000-style metadata from ISIC's one-hot labels and lesion groupings."""
    truth = pd.read_csv(truth_csv)
    _require_columns(truth, ("image", *(c.upper() for c in DERMA_CLASSES)), truth_csv)
    groups = pd.read_csv(groupings_csv)
    _require_columns(groups, ("image", "lesion_id", "diagnosis_confirm_type"), groupings_csv)
    one_hot = truth[[c.upper() for c in DERMA_CLASSES]].to_numpy()
    table = pd.DataFrame(
        {"image_id": truth["image"], "dx": np.array(DERMA_CLASSES)[one_hot.argmax(1)]}
    )
    table = table.merge(
        groups.rename(columns={"image": "image_id", "diagnosis_confirm_type": "dx_type"}),
        on="image_id",
        how="left",
    )
    for column in ("age", "sex", "localization"):  # not part of the ISIC files
        table[column] = pd.NA
    return table[list(HAM10000_COLUMNS)].sort_values("image_id").reset_index(drop=True)


def xray_patient(file_name: str) -> str:
    """The patient in a Kermany et al. file name: personN, or IM-XXXX (NORMAL2-IM-XXXX joins it)."""
    if match := re.match(r"(person\d+)_", file_name):
        return match.group(1)
    if match := re.search(r"(IM-\d+)-", file_name):
        return match.group(1)
    return Path(file_name).stem  # unknown pattern: its own group


def _chest_xray_table(folder: Path) -> pd.DataFrame:
    """One row per X-ray image: file, label, patient and official split (train/test)."""
    archive = download(
        CHEST_XRAY, folder, manual="Mendeley may show a page first: click 'Download All'."
    )
    root = safe_extract(archive, folder / "ChestXRay2017")
    rows = []
    for path in sorted(root.rglob("*.jp*g")):
        split, label = path.parent.parent.name.lower(), path.parent.name.lower()
        if split in ("train", "test", "val") and label in XRAY_CLASSES:
            rows.append(
                {
                    "path": str(path),
                    "file": path.relative_to(root).as_posix(),
                    "label": XRAY_CLASSES.index(label),
                    "patient": xray_patient(path.name),
                    "split": split,
                }
            )
    if not rows:
        raise ValueError(
            f"No chest_xray/{{train,test}}/{{NORMAL,PNEUMONIA}}/*.jpeg found in {root}."
        )
    return pd.DataFrame(rows)


def _cache_path(name: str, size: int) -> Path:
    return data_dir() / "prepared" / f"{name}_{size}px.npz"


def _save_cache(path: Path, arrays: dict[str, np.ndarray], metadata: pd.DataFrame) -> None:
    """Write the array cache and its metadata CSV; the .npz appears last, whole (os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.npz")
    np.savez(partial, **arrays)
    metadata.to_csv(path.with_suffix(".csv"), index=False)
    os.replace(partial, path)


def prepare_original(name: str, size: int, on_error: str = "stop") -> ImageSet:
    """Download, extract and decode the original archive once; later calls read the array cache."""
    cache = _cache_path("ham10000" if name == "derma" else "chest_xray", size)
    if not cache.is_file():
        if name == "derma":
            table, folder = _ham10000_table(data_dir() / "ham10000")
            paths = [folder / f"{image_id}.jpg" for image_id in table["image_id"]]
            labels, groups = table["dx"].map(DERMA_CLASSES.index), table["lesion_id"]
        else:
            table = _chest_xray_table(data_dir() / "chest_xray")
            paths, labels, groups = table.pop("path"), table["label"], table["patient"]
        images, kept, sizes = decode_images(list(paths), size, name == "xray", on_error)
        metadata = table[kept].assign(width=sizes[:, 0], height=sizes[:, 1])
        arrays = {"images": images, "labels": np.asarray(labels)[kept]}
        arrays["groups"] = np.asarray(groups, str)[kept]
        if "split" in table:
            arrays["split"] = np.asarray(table["split"], str)[kept]
        _save_cache(cache, arrays, metadata.reset_index(drop=True))
    with np.load(cache) as arrays:
        title = "HAM10000" if name == "derma" else "ChestXRay2017 (Kermany et al.)"
        return ImageSet(
            images=arrays["images"],
            labels=arrays["labels"].astype(np.int64),
            class_names=DERMA_CLASSES if name == "derma" else XRAY_CLASSES,
            groups=arrays["groups"],
            source=f"{title}, original archive, {size} px",
            official_split=arrays.get("split"),
            metadata=pd.read_csv(cache.with_suffix(".csv")),
        )


# MedMNIST+ and the offline sample -------------------------------------------------------------


def medmnist_file(name: str, size: int) -> RemoteFile:
    """The DermaMNIST / PneumoniaMNIST file at `size` px (URL and md5 from the medmnist package)."""
    from medmnist import INFO

    flag = "dermamnist" if name == "derma" else "pneumoniamnist"
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
    title = "DermaMNIST" if name == "derma" else "PneumoniaMNIST"
    resized = f", resized to {size} px" if native != size else ""
    return ImageSet(
        images=images,
        labels=np.concatenate([p[2] for p in parts]).astype(np.int64),
        class_names=DERMA_CLASSES if name == "derma" else XRAY_CLASSES,
        # MedMNIST carries no lesion or patient ids: every image is its own group.
        groups=np.arange(len(images)).astype(str),
        source=f"{title} (MedMNIST+, {native} px file{resized})",
        official_split=np.concatenate([[split] * len(labels) for split, _, labels in parts]),
    )


def load_sample(name: str, size: int, num_samples: int, seed: int = 0) -> ImageSet:
    """The generated offline sample as an ImageSet (official split 70/10/20 by image)."""
    sample = make_sample(name, size, num_samples, seed)
    return ImageSet(
        images=np.concatenate([sample[f"{s}_images"] for s in SPLITS]),
        labels=np.concatenate([sample[f"{s}_labels"].reshape(-1) for s in SPLITS]).astype(np.int64),
        class_names=DERMA_CLASSES if name == "derma" else XRAY_CLASSES,
        groups=np.concatenate([sample[f"{s}_groups"] for s in SPLITS]).astype(str),
        source=f"generated offline sample ({name}, NOT patient data), {size} px",
        official_split=np.concatenate([[s] * len(sample[f"{s}_labels"]) for s in SPLITS]),
    )


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


def load_dataset(
    name: str,
    source: str = "auto",
    image_size: int | None = None,
    max_samples: int | None = -1,
    profile: Profile | None = None,
    on_error: str = "stop",
    seed: int = 0,
) -> ImageSet:
    """Images, labels, class names and groups of "derma" (HAM10000) or "xray" (chest X-ray).

    source: "original" (the published archives, decoded once into data/prepared/), "medmnist"
    (MedMNIST+ files with official splits), "sample" (generated, offline) or "auto": the original
    when already prepared, else MedMNIST+. When the real data cannot be downloaded, the smoke
    profile falls back to the sample; the other profiles raise DownloadError with manual steps.
    image_size and max_samples default to the profile's (max_samples=None: all images).
    Prints which source it used.
    """
    if name not in NAMES:
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(NAMES)}.")
    if source not in SOURCE_KINDS:
        raise ValueError(f"Unknown source {source!r}. Choose one of: {', '.join(SOURCE_KINDS)}.")
    profile = profile or get_profile()
    size = image_size or profile.image_size
    limit = profile.max_samples if max_samples == -1 else max_samples
    prepared = _cache_path("ham10000" if name == "derma" else "chest_xray", size).is_file()
    if source == "auto":
        source = "original" if prepared else "medmnist"
    try:
        if source == "original":
            data = prepare_original(name, size, on_error)
        elif source == "medmnist":
            data = load_medmnist(name, size)
        else:
            data = load_sample(name, size, limit or 2000, seed)
    except DownloadError as err:
        if not profile.allow_offline_sample:
            raise
        print(f"No real data could be had ({err.reason()}).")
        data = load_sample(name, size, limit or 2000, seed)
    data = limit_samples(data, limit, seed)
    print(f"Using {data.source}: {len(data):,} images, {len(np.unique(data.groups)):,} groups.")
    return data
