"""Image arrays to normalised batches, and resizing, with the checks of their arguments; the
class names and sample re-exported."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence, Sized

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    WeightedRandomSampler,
)

# Notebooks and tests import these from here; each is defined once, in catalog or synthetic.
from course_utils.catalog import (  # noqa: F401
    DERMA_CLASSES,
    HAM10000_COUNTS,
    SPLITS,
    XRAY_CLASSES,
    XRAY_COUNTS,
    class_names,
)
from course_utils.synthetic import SAMPLES, make_sample  # noqa: F401


def check_integer(value: object, name: str, least: int, what: str) -> int:
    """`value` as an int if it is an integer ≥ least (int, np.int64, …; not bool or float)."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < least:
        raise ValueError(f"{name} must be an integer ≥ {least} ({what}), got {value!r}.")
    return number


def check_images(images: np.ndarray) -> None:
    """Raise a ValueError unless `images` is uint8 N×H×W (grey) or N×H×W×C with C in {1, 3}."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        kind = getattr(images, "dtype", type(images).__name__)
        raise ValueError(f"images must be a numpy uint8 array (0..255), got {kind}.")
    if images.ndim == 4 and images.shape[-1] in (1, 3) or images.ndim == 3:
        return
    raise ValueError(
        f"images must have shape N×H×W (grey) or N×H×W×C with C = 1 or 3 (RGB); got "
        f"{images.shape}. A channels-first array needs images.transpose(0, 2, 3, 1)."
    )


def check_labels(labels: np.ndarray | Sequence[int], count: int) -> np.ndarray:
    """`count` labels as int64 class indices 0, 1, …; a ValueError naming the first bad one."""
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != count:
        raise ValueError(f"{count} images but {len(labels)} labels.")
    if labels.dtype.kind not in "biuf":
        raise ValueError(
            f"labels must be integer class indices, got dtype {labels.dtype}: for class names "
            f"use their indices, e.g. np.unique(names, return_inverse=True)[1]."
        )
    if labels.dtype.kind == "f" and len(bad := np.flatnonzero(labels % 1 != 0)):  # NaN too
        i, value = int(bad[0]), labels[bad[0]]
        shown = "NaN (a missing label)" if np.isnan(value) else value
        raise ValueError(
            f"labels must be integer class indices, but the label at position {i} is {shown}: "
            f"give every image a whole class number, then pass labels.astype(int)."
        )
    if len(bad := np.flatnonzero(labels < 0)):
        i = int(bad[0])
        raise ValueError(
            f"labels must be class indices 0, 1, …, but the label at position {i} is "
            f"{labels[i]}: number the classes from 0 and leave out images without a class."
        )
    return labels.astype(np.int64)


def check_label_range(labels: torch.Tensor, num_outputs: int, where: str) -> None:
    """Raise a ValueError unless every label (of a batch, say) indexes one of the outputs."""
    low, high = (int(v) for v in labels.aminmax()) if len(labels) else (0, 0)
    if low < 0 or high >= num_outputs:
        raise ValueError(
            f"Labels of {where} run from {low} to {high} but the model has {num_outputs} "
            f"outputs: build it with num_classes = number of classes."
        )


def check_batches(**loaders: DataLoader | None) -> None:
    """Raise a ValueError naming any of these loaders (by keyword) that holds no batch."""
    for name, loader in loaders.items():
        if loader is not None and isinstance(loader.dataset, Sized) and len(loader) == 0:
            raise ValueError(
                f"{name} holds no batches ({len(loader.dataset)} images): give it more images "
                f"(is max_samples too small for this split?), or with drop_last=True a "
                f"batch_size no larger than their number."
            )


def _channel_stats(values: Sequence[float], name: str) -> torch.Tensor:
    """mean or std: one value per RGB channel, shaped to broadcast over N×3×H×W batches."""
    stats = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if len(stats) != 3:
        raise ValueError(
            f"{name} must hold 3 values, one per RGB channel (grey images are served as 3 "
            f"equal channels), got {len(stats)}: use input_stats(arch) or e.g. (0.5,) * 3."
        )
    if name == "std" and not bool((stats > 0).all()):
        raise ValueError(f"std must be > 0 in every channel, got {tuple(stats.tolist())}.")
    return stats.view(1, 3, 1, 1)


class ArrayDataset(Dataset):
    """uint8 images in memory, served as normalised float tensors N×3×H×W (grey is repeated)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        mean: Sequence[float],
        std: Sequence[float],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        check_images(images)
        self.images = torch.from_numpy(images)  # shares memory with the array: no copy
        self.labels = torch.from_numpy(check_labels(labels, len(images)))
        self.mean, self.std = _channel_stats(mean, "mean"), _channel_stats(std, "std")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One image (3×H×W) for an int, a whole batch (N×3×H×W) for a list of indices."""
        single = isinstance(index, int)
        batch = self.images[[index] if single else index]
        # NHWC → NCHW, copied while still uint8: a permuted view would reach the network with
        # channels-last strides (reported 25 % slower on one CPU; `fit_overhead.py --strided`).
        x = batch.unsqueeze(1) if batch.ndim == 3 else batch.permute(0, 3, 1, 2).contiguous()
        x = x.float().div_(255).expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        if self.transform is not None:
            x = self.transform(x)
        return (x[0], self.labels[index]) if single else (x, self.labels[index])


def rotate_flip(generator: torch.Generator | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A batch transform: each square image turned by 0, 90, 180 or 270° and maybe mirrored."""

    def transform(x: torch.Tensor) -> torch.Tensor:
        turns = torch.randint(0, 4, (len(x),), generator=generator)
        mirror = torch.rand(len(x), generator=generator) < 0.5
        out = torch.empty_like(x)
        for k in range(4):
            chosen = turns == k
            out[chosen] = torch.rot90(x[chosen], k, dims=(2, 3))
        out[mirror] = out[mirror].flip(-1)
        return out

    return transform


def make_loader(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    shuffle: bool = False,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
    balanced: bool = False,
) -> DataLoader:
    """A DataLoader that slices whole batches out of the array (no per-image Python work).

    balanced=True draws images with replacement so that every class is equally likely.
    """
    dataset = ArrayDataset(images, labels, mean, std, transform)
    if len(dataset) == 0 and (shuffle or balanced):
        raise ValueError(
            "No images to shuffle or balance: the array is empty (is max_samples too small for "
            "this split?)."
        )
    generator = torch.Generator().manual_seed(seed)
    if balanced:
        counts = torch.bincount(dataset.labels).double()
        weights = (1 / counts)[dataset.labels]
        order = WeightedRandomSampler(weights, len(dataset), replacement=True, generator=generator)
    elif shuffle:
        order = RandomSampler(dataset, generator=generator)
    else:
        order = SequentialSampler(dataset)
    # batch_size=None: the sampler yields index lists and the dataset builds each batch itself.
    return DataLoader(
        dataset,
        sampler=BatchSampler(order, batch_size, drop_last=False),
        batch_size=None,
        pin_memory=torch.cuda.is_available(),
        generator=generator,  # so iterating never draws from (and shifts) the global RNG
    )


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 image array to size×size with antialiasing (kept uint8, same layout)."""
    check_images(images)
    size = check_integer(size, "size", 1, "pixels per side")
    if images.shape[1:3] == (size, size):
        return images
    x = torch.from_numpy(images)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True)
    x = x.round().clamp_(0, 255).to(torch.uint8)
    return (x[:, 0] if images.ndim == 3 else x.permute(0, 2, 3, 1)).numpy()
