"""The offline sample: generated images with class-dependent structure, in the MedMNIST layout.

It lets every notebook run without a download; it is NOT medical data and shows no real result.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from course_utils.catalog import DATASETS, DERMA_CLASSES, SPLITS, XRAY_CLASSES

SAMPLES = tuple(DATASETS)


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


def _another_view(image: np.ndarray, turn: bool, rng: np.random.Generator) -> np.ndarray:
    """The same lesion or patient imaged again: turned (if `turn`), other exposure, shifted."""
    if turn:  # a lesion has no "up": dermoscopy images come in any orientation
        image = np.rot90(image, k=rng.integers(4))
        image = image[:, ::-1] if rng.random() < 0.5 else image
    shift = rng.integers(-2, 3, size=2)
    return np.roll(image, shift, axis=(0, 1)) * rng.uniform(0.9, 1.1)


# How each sample is drawn, and how the real class counts become its class frequencies: derma's
# 58:1 imbalance is softened by a square root, so that its rare classes show in a small sample.
_DRAW = {"derma": (_derma_image, np.sqrt), "xray": (_xray_image, list)}


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
    draw, soften = _DRAW[name]
    counts = soften(DATASETS[name].counts)
    turn = DATASETS[name].any_orientation
    images, labels, groups = [], [], []
    while len(images) < num_samples:
        label = rng.choice(len(counts), p=np.asarray(counts) / np.sum(counts))
        first = draw(int(label), image_size, rng)
        views = [first] + [
            _another_view(first, turn, rng) for _ in range(rng.choice(3, p=[0.75, 0.18, 0.07]))
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
