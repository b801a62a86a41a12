"""Image arrays to normalised batches; the generated offline sample that stands in for real data."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    WeightedRandomSampler,
)

DERMA_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")  # label order of DermaMNIST
XRAY_CLASSES = ("normal", "pneumonia")  # label order of PneumoniaMNIST
# Images per class in HAM10000 and in the Kermany et al. chest X-ray set.
HAM10000_COUNTS = {
    "akiec": 327,
    "bcc": 514,
    "bkl": 1099,
    "df": 115,
    "mel": 1113,
    "nv": 6705,
    "vasc": 142,
}
XRAY_COUNTS = {"normal": 1583, "pneumonia": 4273}
SAMPLES = ("derma", "xray")
SPLITS = ("train", "val", "test")


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
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        self.images = torch.from_numpy(images)  # shares memory with the array: no copy
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One image (3×H×W) for an int, a whole batch (N×3×H×W) for a list of indices."""
        single = isinstance(index, int)
        batch = self.images[[index] if single else index]
        x = batch.unsqueeze(1) if batch.ndim == 3 else batch.permute(0, 3, 1, 2)
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
    if images.shape[1:3] == (size, size):
        return images
    x = torch.from_numpy(images)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True)
    x = x.round().clamp_(0, 255).to(torch.uint8)
    return (x[:, 0] if images.ndim == 3 else x.permute(0, 2, 3, 1)).numpy()


# ---------------------------------------------------------------------------------------------
# The offline sample: generated images with class-dependent structure, in the MedMNIST layout.
# It lets every notebook run without a download; it is NOT medical data and shows no real result.
# ---------------------------------------------------------------------------------------------


def _smooth_field(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, waves: int = 4):
    """A random smooth pattern in about [-1, 1]: a sum of a few low-frequency waves."""
    field = np.zeros_like(xx)
    for _ in range(waves):
        fy, fx = rng.normal(0, 2.5, size=2)
        field += np.cos(fy * yy + fx * xx + rng.uniform(0, 2 * np.pi))
    return field / waves


def _derma_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One dermoscopy-like RGB image in [0, 1]: skin, a lesion whose look depends on the class."""
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    skin = np.array([0.86, 0.66, 0.56]) + rng.normal(0, 0.04, 3)
    image = skin * (1 + 0.06 * _smooth_field(rng, yy, xx))[..., None]
    cls = DERMA_CLASSES[label]
    # Radius, border irregularity and colour(s) per class (loosely after the dermoscopic look).
    radius = {
        "df": 0.28,
        "vasc": 0.3,
        "nv": 0.42,
        "mel": 0.55,
        "bkl": 0.5,
        "bcc": 0.45,
        "akiec": 0.5,
    }[cls] * rng.uniform(0.8, 1.2)
    ragged = {"mel": 0.18, "akiec": 0.12, "bkl": 0.08, "bcc": 0.08}.get(cls, 0.03)
    cy, cx = rng.uniform(-0.2, 0.2, 2)
    dist, angle = np.hypot(yy - cy, xx - cx), np.arctan2(yy - cy, xx - cx)
    border = radius * (
        1 + sum(ragged * rng.normal() * np.cos(k * angle + rng.uniform(0, 6)) for k in range(2, 6))
    )
    mask = 1 / (1 + np.exp(-(border - dist) / 0.03))
    colours = {
        "nv": [0.45, 0.28, 0.18],
        "mel": [0.2, 0.12, 0.1],
        "bkl": [0.66, 0.52, 0.38],
        "bcc": [0.88, 0.58, 0.6],
        "akiec": [0.78, 0.42, 0.38],
        "df": [0.5, 0.32, 0.22],
        "vasc": [0.6, 0.12, 0.25],
    }
    tint = rng.uniform(0.7, 1.3) * rng.uniform(0.92, 1.08, 3)  # darker/lighter, slightly hued
    lesion = np.array(colours[cls]) * tint * np.ones_like(image)
    if cls == "mel":  # several colours: dark brown, black and blue-grey regions
        blend = (_smooth_field(rng, yy * 3, xx * 3) > 0)[..., None]
        lesion = np.where(blend, lesion, np.array([0.35, 0.38, 0.48]))
    elif cls == "bkl":  # a waxy, ridged ("brain-like") surface
        lesion *= (1 + 0.15 * np.sin(18 * (xx + 0.5 * yy)))[..., None]
    elif cls == "bcc":  # branching red vessels on a pink, pearly background
        vessels = np.abs(_smooth_field(rng, yy * 4, xx * 4, waves=3)) < 0.06
        lesion[vessels] = [0.7, 0.1, 0.12]
    elif cls == "akiec":  # a rough, scaly surface
        lesion *= (1 + 0.25 * rng.normal(size=(size, size)))[..., None].clip(0.6, 1.4)
    elif cls == "df":  # a brown ring around a pale, scar-like centre
        lesion = np.where((dist < radius * 0.45)[..., None], [0.9, 0.82, 0.76], lesion)
    elif cls == "vasc":  # red-purple lobules
        lobules = _smooth_field(rng, yy * 5, xx * 5) > 0.1
        lesion[lobules] *= 0.6
    image = mask[..., None] * lesion + (1 - mask[..., None]) * image
    if rng.random() < 0.3:  # a hair across the field, as in many dermoscopy images
        a, b = rng.uniform(-1, 1, 2)
        hair = np.abs(yy - (a * xx + b + 0.2 * np.sin(3 * xx))) < 0.015
        image[hair] = 0.15
    vignette = np.clip(1.35 - 0.5 * np.hypot(yy, xx) ** 2, 0, 1)  # the dark dermatoscope rim
    return image * vignette[..., None] * rng.uniform(0.75, 1.15)  # exposure varies


def _xray_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One chest-X-ray-like grey image in [0, 1]: dark lungs, bright spine, heart and ribs."""
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    yy = yy * rng.uniform(0.9, 1.1) + rng.normal(0, 0.04)
    xx = xx * rng.uniform(0.9, 1.1) + rng.normal(0, 0.04)
    body = ((xx / 0.9) ** 2 + (yy / 1.1) ** 2 < 1).astype(float)
    image = 0.05 + 0.5 * body
    lungs = np.zeros_like(xx)
    for side in (-1, 1):
        lungs += ((xx - side * 0.38) / 0.27) ** 2 + ((yy + 0.05) / 0.55) ** 2 < 1
    ribs = 0.08 * (np.cos(14 * (yy + 0.25 * xx**2)) > 0.6)
    image = image - lungs * (0.35 - ribs)
    image += 0.3 * (np.abs(xx) < 0.09)  # spine and mediastinum
    image += 0.25 * (((xx - 0.12) / 0.22) ** 2 + ((yy - 0.25) / 0.2) ** 2 < 1)  # heart
    if XRAY_CLASSES[label] == "pneumonia":  # patchy opacities inside the lungs
        for _ in range(rng.integers(1, 4)):
            side = rng.choice([-1, 1])
            oy, ox = rng.uniform(-0.4, 0.4), side * 0.38 + rng.uniform(-0.12, 0.12)
            spread = rng.uniform(0.1, 0.25)
            blob = np.exp(-((yy - oy) ** 2 + (xx - ox) ** 2) / (2 * spread**2))
            image += lungs * blob * rng.uniform(0.25, 0.45)
        image += lungs * 0.08 * np.clip(_smooth_field(rng, yy * 6, xx * 6), 0, 1)
    image = gaussian_filter(image, sigma=size / 100)  # soft edges, as on a radiograph
    return image * rng.uniform(0.85, 1.15) + rng.uniform(-0.05, 0.05)


def _another_view(image: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """The same lesion or patient imaged again: turned (skin only), other exposure, shifted."""
    if name == "derma":  # a lesion has no "up": dermoscopy images come in any orientation
        image = np.rot90(image, k=rng.integers(4))
        image = image[:, ::-1] if rng.random() < 0.5 else image
    shift = rng.integers(-2, 3, size=2)
    return np.roll(image, shift, axis=(0, 1)) * rng.uniform(0.9, 1.1)


def make_sample(
    name: str, image_size: int = 32, num_samples: int = 420, seed: int = 0
) -> dict[str, np.ndarray]:
    """Generate the offline sample ("derma": 7 classes, RGB; "xray": 2 classes, grey).

    Same keys and layout as a MedMNIST .npz file (train/val/test split 70/10/20 by image, labels
    N×1), plus `{split}_groups`: like HAM10000's lesions, about a quarter of the groups hold two
    or three views of one lesion (or patient). Class frequencies follow the real data's imbalance,
    softened (square root) for derma.
    """
    if name not in SAMPLES:
        raise ValueError(f"Unknown sample {name!r}. Choose one of: {', '.join(SAMPLES)}.")
    if image_size < 8 or num_samples < 20:
        raise ValueError(
            f"Need image_size ≥ 8 and num_samples ≥ 20 (got {image_size}, {num_samples})."
        )
    rng = np.random.default_rng(seed)
    counts = (
        np.sqrt(list(HAM10000_COUNTS.values())) if name == "derma" else list(XRAY_COUNTS.values())
    )
    draw = _derma_image if name == "derma" else _xray_image
    images, labels, groups = [], [], []
    while len(images) < num_samples:
        label = rng.choice(len(counts), p=np.asarray(counts) / np.sum(counts))
        first = draw(int(label), image_size, rng)
        views = [first] + [
            _another_view(first, name, rng) for _ in range(rng.choice(3, p=[0.75, 0.18, 0.07]))
        ]
        images += views
        labels += [label] * len(views)
        groups += [len(set(groups))] * len(views)
    order = rng.permutation(len(images))[:num_samples]  # shuffled by image, as DermaMNIST is
    images = np.stack(images)[order]
    noisy = images + rng.normal(0, 0.02, images.shape)
    images = (np.clip(noisy, 0, 1) * 255).round().astype(np.uint8)
    labels, groups = np.asarray(labels)[order], np.asarray(groups)[order]
    cut = np.cumsum([int(0.7 * num_samples), int(0.1 * num_samples)])
    sample = {}
    for split, part in zip(SPLITS, np.split(np.arange(num_samples), cut), strict=True):
        sample[f"{split}_images"] = images[part]
        sample[f"{split}_labels"] = labels[part].reshape(-1, 1).astype(np.uint8)
        sample[f"{split}_groups"] = groups[part]
    return sample


def class_names(name: str) -> tuple[str, ...]:
    """The class names of a dataset or sample, in label order."""
    if name in ("derma", "dermamnist", "ham10000"):
        return DERMA_CLASSES
    if name in ("xray", "pneumoniamnist", "chest_xray"):
        return XRAY_CLASSES
    raise ValueError(f"Unknown dataset {name!r}. Choose one of: derma, xray.")
