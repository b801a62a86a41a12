"""ImageSet: the images of one dataset with their labels, class names, groups and provenance."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from course_utils.catalog import SPLITS
from course_utils.data import resize_images
from course_utils.splits import grouped_split

# Sources whose files carry no lesion or patient ids, so that each image is its own group:
# MedMNIST+ (DermaMNIST, PneumoniaMNIST). Their groups are only a stand-in, and a "grouped" split
# of them is a split by image. The originals and the generated sample have real groups.
HIDES_GROUPS = re.compile(r"mnist", re.IGNORECASE)


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
        """Grouped stratified "60/20/20" or "80/20", or the source's "official" split.

        A grouped split of a source without lesion or patient ids (MedMNIST+) is a split by image:
        it warns (UserWarning) that lesions may leak, and names the sources with real groups.
        """
        if scheme == "official":
            if self.official_split is None:
                raise ValueError(f"{self.source} has no official split; use '60/20/20' or '80/20'.")
            parts = {s: np.flatnonzero(self.official_split == s) for s in SPLITS}
            return {s: self.subset(i) for s, i in parts.items() if len(i)}
        parts = grouped_split(self.labels, self.groups, scheme, seed)
        self._warn_if_groups_are_hidden()
        return {s: self.subset(i) for s, i in parts.items()}

    def _warn_if_groups_are_hidden(self) -> None:
        """Warn (once per split) when the groups are one per image because the source drops them.

        Only for a source known to hide its groups (MedMNIST+): a small subset of the X-ray
        archive may hold one image per patient, and those groups are real.
        """
        if (
            len(self) > 1
            and HIDES_GROUPS.search(self.source)
            and len(np.unique(self.groups)) == len(self)
        ):
            warnings.warn(
                f"{self.source} carries no lesion or patient ids: every image is its own group, "
                "so this split is by image, and images of one lesion may land in train and test: "
                "use source='original' (or, for derma, source='dermamnist_c') for lesion-grouped "
                "splits, patient-grouped for the X-rays.",
                UserWarning,
                stacklevel=3,
            )
