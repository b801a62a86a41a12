"""What the benchmarks share: alternate the contenders in one run and report median images/s."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(
    runs: dict[str, Callable[[], object]], images: int, repeats: int
) -> dict[str, list[float]]:
    """Time every run `repeats` times, alternating which goes first; images/s of every repeat."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for repeat in range(1, repeats + 1):
        for name in names if repeat % 2 else names[::-1]:  # neither always goes first
            start = time.perf_counter()
            runs[name]()
            rates[name].append(images / (time.perf_counter() - start))
        print(f"repeat {repeat}: " + ", ".join(f"{n} {rates[n][-1]:9.1f} images/s" for n in names))
    return rates


def compare(runs: dict[str, Callable[[], object]], images: int, repeats: int) -> dict[str, float]:
    """Time every run `repeats` times, alternating which goes first; median images/s of each."""
    medians = {
        name: statistics.median(values) for name, values in timed(runs, images, repeats).items()
    }
    print("median images/s: " + ", ".join(f"{n} {m:.1f}" for n, m in medians.items()))
    return medians


def ratios(rates: dict[str, list[float]], over: str, under: str) -> str:
    """ "median X, best-of Y": the ratio of two runs' images/s, by median and by best repeat.

    On a busy machine other processes only ever slow a run down, so the best repeat of each is
    the least disturbed estimate; the median is the typical one.
    """
    median = statistics.median(rates[over]) / statistics.median(rates[under])
    best = max(rates[over]) / max(rates[under])
    return f"median {median:.3f}, best-of {best:.3f}"


def sample_loader(arch: str, image_size: int, samples: int, batch_size: int):
    """A shuffled loader of about `samples` generated training images, normalised for `arch`."""
    from course_utils import make_loader, make_sample
    from course_utils.models import input_stats

    sample = make_sample("derma", image_size, round(samples / 0.7))  # 70% is the train split
    mean, std = input_stats(arch)
    return make_loader(
        sample["train_images"],
        sample["train_labels"],
        batch_size=batch_size,
        mean=mean,
        std=std,
        shuffle=True,
    )
