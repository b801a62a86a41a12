"""The original archives: where each file is published, its readers, and the decoded cache."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from course_utils import kaggle
from course_utils.catalog import DATASETS, DERMA, DERMA_CLASSES, XRAY, XRAY_CLASSES, dataset_info
from course_utils.config import data_dir
from course_utils.decode import decode_images
from course_utils.download import DownloadError, RemoteFile, download, manual_steps
from course_utils.extract import build_folder, remove_stale, safe_extract, write_atomically
from course_utils.imageset import ImageSet
from course_utils.packs import fetch_prepared

DATAVERSE = "https://dataverse.harvard.edu/api/access/datafile/"
ISIC_BASES = (
    "https://isic-archive.s3.amazonaws.com/challenges/2018/",
    "https://isic-challenge-data.s3.amazonaws.com/2018/",  # the older address many scripts use
)
HAM10000_COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")

# HAM10000 from Harvard Dataverse (doi:10.7910/DVN/DBW86T): images in two zips, metadata as CSV.
HAM10000_DATAVERSE = (
    RemoteFile(
        "HAM10000_images_part_1.zip",
        (DATAVERSE + "3172585",),
        md5="4639bfa73ab251610530a97c898e6e46",
        size=1_366_522_108,
        mirror_path=f"{DERMA.folder}/HAM10000_images_part_1.zip",
    ),
    RemoteFile(
        "HAM10000_images_part_2.zip",
        (DATAVERSE + "3172584",),
        md5="da43d6cc50f6613013be07e8986b384b",
        size=1_403_566_547,
        mirror_path=f"{DERMA.folder}/HAM10000_images_part_2.zip",
    ),
    RemoteFile(
        "HAM10000_metadata.csv",
        (DATAVERSE + "4338392?format=original",),
        md5="8f85fb1aa29d80a2797247e434deb79d",
        size=690_218,
        mirror_path=f"{DERMA.folder}/HAM10000_metadata.csv",
    ),
)
# The same 10,015 images from the ISIC 2018 Task 3 training set (no checksums are published).
ISIC_GROUPING_COLUMNS = ("image", "lesion_id", "diagnosis_confirm_type")
HAM10000_ISIC = tuple(
    RemoteFile(
        name,
        tuple(base + name for base in ISIC_BASES),
        mirror_path=f"{DERMA.folder}/{name}",
        columns=columns,  # the CSV is checked for its header, as no checksum is published
    )
    for name, columns in (
        ("ISIC2018_Task3_Training_Input.zip", ()),
        ("ISIC2018_Task3_Training_GroundTruth.zip", ()),
        ("ISIC2018_Task3_Training_LesionGroupings.csv", ISIC_GROUPING_COLUMNS),
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
    mirror_path=f"{XRAY.folder}/ChestXRay2017.zip",
)


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
            failures.append(err.steps)
            problems += err.problems
    if failures:
        count = f"{len(failures)} of {len(files)} files" if len(files) > 1 else "the file"
        raise DownloadError(f"Missing {count}:\n\n" + "\n\n".join(failures), problems)
    return paths


def _ham10000_table(folder: Path) -> tuple[pd.DataFrame, Path]:
    """HAM10000's metadata and its image folder: Dataverse files first, ISIC 2018 as fallback."""
    manual = (
        f"Dataverse may ask you to accept its terms first: open "
        f"https://doi.org/10.7910/DVN/DBW86T, download the files and put them in {folder}."
    )
    try:
        *zips, csv = _fetch_all(HAM10000_DATAVERSE, folder, manual)
        images = _flatten(zips, folder / "HAM10000_images")
        return _read_ham10000_metadata(csv), images
    except DownloadError as dataverse_error:
        try:
            archive, truth_zip, groupings = _fetch_all(HAM10000_ISIC, folder, manual="")
        except DownloadError as isic_error:
            raise DownloadError(
                f"{dataverse_error.steps}\n\nThe ISIC 2018 copy failed too:\n{isic_error.steps}",
                dataverse_error.problems + isic_error.problems,
            ) from None
        images = _flatten([archive], folder / "ISIC2018_images")
        truth = safe_extract(truth_zip, folder / truth_zip.stem)
        return _read_isic_metadata(next(truth.rglob("*.csv")), groupings), images


def _flatten(zips: list[Path], target: Path) -> Path:
    """Every .jpg of the zips in one folder (HAM10000's zips nest differently), whole or absent."""

    def fill(partial: Path) -> None:
        for archive in zips:  # each unpacked inside the partial folder, then emptied into it
            unpacked = safe_extract(archive, Path(tempfile.mkdtemp(dir=partial)) / "files")
            for path in unpacked.rglob("*.jpg"):
                os.replace(path, partial / path.name)
            shutil.rmtree(unpacked.parent)

    return build_folder(target, fill)


def _require_columns(
    table: pd.DataFrame, columns: tuple[str, ...], path: Path, ours: bool = True
) -> None:
    """Raise if a column is missing; a file of `ours` (downloaded, not attached) is deleted."""
    missing = [c for c in columns if c not in table.columns]
    if missing and not ours:  # an attached, read-only copy: nothing to delete
        raise ValueError(
            f"{path} lacks the column(s) {missing} (it has {list(table.columns)}): it is not "
            f"HAM10000's metadata. {kaggle.attach_hint(DERMA.name)} (that exact dataset)."
        )
    if missing:
        path.unlink()  # a wrong file must not stay in the cache
        raise ValueError(
            f"{path.name} lacks the column(s) {missing} (it has {list(table.columns)}). It is not "
            f"the published file (Dataverse serves a converted .tab unless asked for "
            f"?format=original); it was deleted: run again to download it afresh."
        )


def _read_ham10000_metadata(path: Path, ours: bool = True) -> pd.DataFrame:
    table = pd.read_csv(path)
    _require_columns(table, HAM10000_COLUMNS, path, ours)
    return table.sort_values("image_id").reset_index(drop=True)


def _read_isic_metadata(truth_csv: Path, groupings_csv: Path) -> pd.DataFrame:
    """Rebuild HAM10000-style metadata from ISIC's one-hot labels and lesion groupings."""
    truth = pd.read_csv(truth_csv)
    _require_columns(truth, ("image", *(c.upper() for c in DERMA_CLASSES)), truth_csv)
    groups = pd.read_csv(groupings_csv)
    _require_columns(groups, ISIC_GROUPING_COLUMNS, groupings_csv)
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
    """One row per X-ray image: file, label, patient and official split (train/test; val on
    Kaggle, whose 16 val images are Kermany's train). The attached Kaggle copy, read in place,
    else the downloaded archive."""
    kaggle.announce(XRAY.name, attached := kaggle.chest_xray_input())
    if attached:
        root, paths = attached.parent, kaggle.chest_xray_files(attached)
    else:
        archive = download(
            CHEST_XRAY, folder, manual="Mendeley may show a page first: click 'Download All'."
        )
        root = safe_extract(archive, folder / "ChestXRay2017")
        paths = sorted(root.rglob("*.jp*g"))
    rows = []
    for path in paths:
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


def _ham10000_images(folder: Path) -> tuple[pd.DataFrame, list[Path], pd.Series, pd.Series]:
    """HAM10000's metadata, image files, labels and lesions (an attached Kaggle copy in place)."""
    attached = kaggle.ham10000_input()
    kaggle.announce(DERMA.name, attached and attached[0].parent)
    if attached:  # each image once, though Kaggle's copy holds every image folder twice
        csv, folders = attached
        table, found = _read_ham10000_metadata(csv, ours=False), kaggle.ham10000_files(folders)
        names = (f"{image_id}.jpg" for image_id in table["image_id"])
        paths = [found.get(name, folders[0] / name) for name in names]  # absent: decode says so
    else:
        table, images = _ham10000_table(folder)
        paths = [images / f"{image_id}.jpg" for image_id in table["image_id"]]
    return table, paths, table["dx"].map(DERMA_CLASSES.index), table["lesion_id"]


def _chest_xray_images(folder: Path) -> tuple[pd.DataFrame, pd.Series, pd.Series, pd.Series]:
    """The X-ray table (its path column taken out), image files, labels and patients."""
    table = _chest_xray_table(folder)
    return table, table.pop("path"), table["label"], table["patient"]


_READERS = {DERMA.name: _ham10000_images, XRAY.name: _chest_xray_images}


def prepared_path(name: str, size: int) -> Path:
    """The decoded cache of a dataset's original archive at `size` px (there once prepared)."""
    return data_dir() / "prepared" / f"{DATASETS[name].folder}_{size}px.npz"


class DamagedCacheError(RuntimeError):
    """A prepared cache cannot be read, and the archives to rebuild it from are not on disk."""


def _sources_at_hand(name: str) -> bool:
    """Is every file of one of the dataset's sources on disk (to rebuild without network)?"""
    if kaggle.is_attached(name):
        return True
    folder = data_dir() / DATASETS[name].folder
    sources = (HAM10000_DATAVERSE, HAM10000_ISIC) if name == DERMA.name else ((CHEST_XRAY,),)
    return any(
        files and all(f is not None and (folder / f.name).is_file() for f in files)
        for files in sources
    )


def _read_cache(cache: Path) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """The cached arrays and their metadata; ValueError saying what is wrong if damaged."""
    try:
        with np.load(cache) as npz:
            arrays = {key: npz[key] for key in npz.files}
        text = cache.with_suffix(".csv").read_bytes()
        metadata = pd.read_csv(io.BytesIO(text))
        count = len(arrays["images"])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{type(err).__name__}: {err}") from err
    if not text.endswith(b"\n"):
        raise ValueError(f"{cache.with_suffix('.csv').name} ends in the middle of a line")
    if not len(metadata) == len(arrays["labels"]) == count:
        raise ValueError(f"its .csv has {len(metadata):,} rows for {count:,} images")
    return arrays, metadata


def _cached(cache: Path, name: str) -> tuple[dict[str, np.ndarray], pd.DataFrame] | None:
    """The cache if it reads back whole; None if absent, or damaged and the archives at hand."""
    if not cache.is_file():
        return None
    try:
        return _read_cache(cache)
    except ValueError as err:
        problem = str(err)
    folder = data_dir() / DATASETS[name].folder
    if not _sources_at_hand(name):
        raise DamagedCacheError(
            f"The prepared cache {cache} is damaged ({problem}), and the archives it was built "
            f"from are not in {folder}. Delete {cache} and {cache.with_suffix('.csv')}, then run "
            f"again with network access (or with the archives back in {folder})."
        )
    print(f"The prepared cache {cache.name} is damaged ({problem}); rebuilding it from {folder}.")
    return None


@contextlib.contextmanager
def _lock_if_writable(path: Path) -> Iterator[None]:
    """One process at a time prepares a cache; in a read-only folder there is nothing to lock."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path)
        lock.acquire()
    except OSError:
        yield  # nothing can be written here either: the images will be kept in memory
        return
    try:
        yield
    finally:
        lock.release()


def _save_cache(path: Path, arrays: dict[str, np.ndarray], metadata: pd.DataFrame) -> None:
    """Write the metadata CSV, then the arrays, each under a temporary name renamed whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    csv = path.with_suffix(".csv")
    for stale in (csv, path):
        remove_stale(stale)  # left by a run killed while writing (this one holds the lock)
    write_atomically(csv, lambda f: f.write(metadata.to_csv(index=False).encode()))
    try:
        write_atomically(path, lambda f: np.savez(f, **arrays))
    except BaseException:
        csv.unlink(missing_ok=True)
        raise


def _decode_and_keep(name: str, size: int, on_error: str, cache: Path) -> tuple[dict, pd.DataFrame]:
    """Read the archives, decode every image, and keep the result in `cache` when it can."""
    info = DATASETS[name]
    table, paths, labels, groups = _READERS[name](data_dir() / info.folder)
    images, kept, sizes = decode_images(list(paths), size, info.grey, on_error)
    metadata = table[kept].assign(width=sizes[:, 0], height=sizes[:, 1]).reset_index(drop=True)
    arrays = {"images": images, "labels": np.asarray(labels)[kept]}
    arrays["groups"] = np.asarray(groups, str)[kept]
    if "split" in table:
        arrays["split"] = np.asarray(table["split"], str)[kept]
    try:
        _save_cache(cache, arrays, metadata)
    except OSError as err:  # a read-only stick, a full disk
        print(
            f"Could not keep the decoded images in {cache} ({err.strerror or err}): using them "
            f"from memory, so the next run decodes them again (a read-only or full disk?)."
        )
    return arrays, metadata


def _from_pack(cache: Path) -> tuple[dict[str, np.ndarray], pd.DataFrame] | None:
    """The prepared arrays from the pack of $COURSE_MIRROR, if it serves one that has them."""
    try:
        return _read_cache(cache) if fetch_prepared(cache) else None
    except (DownloadError, OSError, ValueError) as err:
        print(f"The mirror's pack could not give {cache.name} ({err}); using the archives.")
        return None


def prepare_original(name: str, size: int, on_error: str = "stop") -> ImageSet:
    """Download, extract and decode the original archive once; later calls read the array cache."""
    info = dataset_info(name)
    cache = prepared_path(info.name, size)
    loaded = _cached(cache, info.name)
    if loaded is None:
        with _lock_if_writable(data_dir() / info.folder / f".prepare_{size}px.lock"):
            with contextlib.suppress(ValueError):  # another process may have just prepared it
                loaded = _read_cache(cache) if cache.is_file() else None
            loaded = (
                loaded or _from_pack(cache) or _decode_and_keep(info.name, size, on_error, cache)
            )
    arrays, metadata = loaded
    return ImageSet(
        images=arrays["images"],
        labels=arrays["labels"].astype(np.int64),
        class_names=info.class_names,
        groups=arrays["groups"],
        source=f"{info.title}, original archive, {size} px",
        official_split=arrays.get("split"),
        metadata=metadata,
    )
