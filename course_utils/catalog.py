"""The course's two datasets, each described once: classes, counts, folders, titles, licence."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "val", "test")
MEDMNIST_CITE = "Yang et al., Sci. Data 10:41 (2023)"
MEDMNIST_RECORD = "MedMNIST+, Zenodo 10519652"


@dataclass(frozen=True)
class DatasetInfo:
    """What the course knows about one dataset, whichever source its images come from."""

    name: str  # what notebooks pass to load_dataset: "derma" or "xray"
    title: str  # the original archive, as ImageSet.source and messages name it
    class_names: tuple[str, ...]  # label order (MedMNIST's, which the original readers follow)
    counts: tuple[int, ...]  # images per class in the original archive, in label order
    grey: bool  # decoded as N×H×W grey rather than N×H×W×3 RGB
    any_orientation: bool  # no "up" in the image (a skin lesion), unlike a chest X-ray
    folder: str  # data/<folder>/ holds the downloads, data/prepared/<folder>_<size>px.npz the cache
    medmnist_flag: str  # the medmnist package's name for its MedMNIST+ version
    medmnist_title: str
    files: str  # where the original comes from, for the SOURCES table
    download: str  # the original's download size
    medmnist_download: str  # MedMNIST+'s, from the 28 px to the 224 px file
    licence: str  # the original's; MedMNIST+ keeps it
    cite: str  # the original's paper

    @property
    def class_counts(self) -> dict[str, int]:
        """Images per class in the original archive, by class name."""
        return dict(zip(self.class_names, self.counts, strict=True))


DERMA = DatasetInfo(
    name="derma",
    title="HAM10000",
    class_names=("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"),
    counts=(327, 514, 1099, 115, 1113, 6705, 142),
    grey=False,
    any_orientation=True,  # dermoscopy images come in any orientation
    folder="ham10000",
    medmnist_flag="dermamnist",
    medmnist_title="DermaMNIST",
    files="HAM10000 (Harvard Dataverse; ISIC 2018 Task 3 as fallback)",
    download="2.8 GB",
    medmnist_download="19 MB–1 GB",
    licence="CC BY-NC 4.0",
    cite="Tschandl et al., Sci. Data 5:180161 (2018)",
)
XRAY = DatasetInfo(
    name="xray",
    title="ChestXRay2017 (Kermany et al.)",
    class_names=("normal", "pneumonia"),
    counts=(1583, 4273),
    grey=True,
    any_orientation=False,
    folder="chest_xray",
    medmnist_flag="pneumoniamnist",
    medmnist_title="PneumoniaMNIST",
    files="ChestXRay2017 (Mendeley Data, doi:10.17632/rscbjbr9sj.2)",
    download="1.2 GB",
    medmnist_download="4 MB–0.3 GB",
    licence="CC BY 4.0",
    cite="Kermany et al., Cell 172(5):1122-1131 (2018)",
)
DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (DERMA, XRAY)}

# DermaMNIST-C (Abhishek, Jain & Hamarneh 2025): the corrected DermaMNIST, HAM10000 re-split so
# that no lesion is in two splits; same classes and label order as DermaMNIST, at 28 and 224 px.
DERMAMNIST_C_TITLE = "DermaMNIST-C"
DERMAMNIST_C_RECORD_URL = "https://zenodo.org/records/12739457"
DERMAMNIST_C_SIZES = (28, 224)
DERMAMNIST_C_SPLITS = {"train": 8215, "val": 573, "test": 1227}  # images per official split
DERMAMNIST_C_FILES = "DermaMNIST-C (Zenodo 12739457) + its authors' lesion metadata (GitHub)"
DERMAMNIST_C_DOWNLOAD = "~20 MB (28 px) or 1.1 GB (224 px)"
DERMAMNIST_C_CITE = "Abhishek, Jain & Hamarneh, Sci. Data 12:196 (2025)"

DERMA_CLASSES = DERMA.class_names  # label order of DermaMNIST
XRAY_CLASSES = XRAY.class_names  # label order of PneumoniaMNIST
# Images per class in HAM10000 and in the Kermany et al. chest X-ray set.
HAM10000_COUNTS = DERMA.class_counts
XRAY_COUNTS = XRAY.class_counts


def dataset_info(name: str) -> DatasetInfo:
    """The description of "derma" or "xray" (also found by its folder or MedMNIST+ name)."""
    for info in DATASETS.values():
        if name in (info.name, info.medmnist_flag, info.folder):
            return info
    raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(DATASETS)}.")


def class_names(name: str) -> tuple[str, ...]:
    """The class names of a dataset or sample, in label order."""
    return dataset_info(name).class_names
