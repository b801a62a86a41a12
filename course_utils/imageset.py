"""ImageSet: the images of one dataset with their labels, class names, groups and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from course_utils.catalog import SPLITS
from course_utils.data import resize_images
from course_utils.splits import grouped_split


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
