"""The generated offline sample (course_utils.synthetic) as an ImageSet, like a MedMNIST file."""

from __future__ import annotations

import numpy as np

from course_utils.catalog import DATASETS, SPLITS
from course_utils.imageset import ImageSet
from course_utils.synthetic import make_sample


def load_sample(name: str, size: int, num_samples: int, seed: int = 0) -> ImageSet:
    """The generated offline sample as an ImageSet (official split 70/10/20 by image)."""
    sample = make_sample(name, size, num_samples, seed)
    return ImageSet(
        images=np.concatenate([sample[f"{s}_images"] for s in SPLITS]),
        labels=np.concatenate([sample[f"{s}_labels"].reshape(-1) for s in SPLITS]).astype(np.int64),
        class_names=DATASETS[name].class_names,
        groups=np.concatenate([sample[f"{s}_groups"] for s in SPLITS]).astype(str),
        source=f"generated offline sample ({name}, NOT patient data), {size} px",
        official_split=np.concatenate([[s] * len(sample[f"{s}_labels"]) for s in SPLITS]),
    )
