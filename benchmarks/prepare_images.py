"""Decode + resize throughput of the prepare step against a naive single-process PIL loop.

Both turn the same generated 600×450 JPEGs (HAM10000's size) into 64×64 uint8 arrays, in one run,
alternating. The last line ends with the ratio prepare / naive.

    .venv/bin/python benchmarks/prepare_images.py [--images 600] [--size 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import compare
from PIL import Image

from course_utils.datasets import decode_images


def naive(paths: list[Path], size: int) -> np.ndarray:
    """What a first script does: open, convert, resize, one file after another."""
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in paths])


def make_jpegs(folder: Path, count: int) -> list[Path]:
    """Lesion-like 600×450 photographs: smooth colour fields with noise, saved at quality 90."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        coarse = rng.integers(60, 230, (9, 12, 3)).astype(np.float32)
        image = np.kron(coarse, np.ones((50, 50, 1))) + rng.normal(0, 8, (450, 600, 3))
        path = folder / f"ISIC_{24306 + i:07d}.jpg"
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = make_jpegs(Path(folder), args.images)
        print(f"{args.images} JPEGs of 600×450 → {args.size}×{args.size}")
        runs = {
            "naive": lambda: naive(paths, args.size),
            "prepare": lambda: decode_images(paths, args.size, grey=False),
        }
        rates = compare(runs, args.images, args.repeats)
    print(f"prepare / naive images/s ratio: {rates['prepare'] / rates['naive']:.2f}")


if __name__ == "__main__":
    main()
