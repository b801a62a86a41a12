"""Per-epoch speed-up of caching the frozen blocks: VGG16 "last block trainable", in one run.

With blocks 1-4 frozen (and no augmentation), `fit` computes their output once and trains only
block 5 and the seed's head on it; `cache_frozen=False` recomputes them every epoch. Both train
the same model on the same data at smoke sizes; runs alternate. The last line ends with the
ratio of seconds per epoch, recomputing / cached (target ≥ 4 on a CPU).

    .venv/bin/python benchmarks/frozen_prefix.py [--image-size 32] [--samples 294] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from course_utils import build_model, fit, freeze, get_device, make_loader, make_sample
from course_utils.config import get_profile
from course_utils.models import input_stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=294, help="training images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = get_device()
    sample = make_sample("derma", args.image_size, round(args.samples / 0.7))
    mean, std = input_stats("vgg16")
    loaders = [
        make_loader(
            sample[f"{s}_images"],
            sample[f"{s}_labels"],
            batch_size=args.batch_size,
            mean=mean,
            std=std,
            shuffle=s == "train",
        )
        for s in ("train", "val")
    ]
    model = build_model(
        "vgg16",
        7,
        weights=None,
        head="seed",
        image_size=args.image_size,
        profile=get_profile("smoke"),
    )
    freeze(model, trainable=["block5"])
    print(
        f"VGG16, seed head, block5 + head trainable; {len(loaders[0].dataset)} training images "
        f"of {args.image_size} px, {args.epochs} epochs per run, {device}"
    )

    per_epoch: dict[str, list[float]] = {"recompute": [], "cached": []}
    whole: dict[str, list[float]] = {"recompute": [], "cached": []}
    for repeat in range(1, args.repeats + 1):
        for name in ("recompute", "cached") if repeat % 2 else ("cached", "recompute"):
            start = time.perf_counter()
            history = fit(
                model,
                *loaders,
                epochs=args.epochs,
                device=device,
                progress=False,
                cache_frozen=name == "cached",
            )
            whole[name].append(time.perf_counter() - start)
            per_epoch[name].append(statistics.mean(history["epoch_seconds"]))
        print(
            f"repeat {repeat}: seconds per epoch (training + validation) recompute "
            f"{per_epoch['recompute'][-1]:.3f}, cached {per_epoch['cached'][-1]:.3f}; whole fit "
            f"{whole['recompute'][-1]:.2f} s vs {whole['cached'][-1]:.2f} s (incl. caching)"
        )
    fit_ratio = statistics.median(whole["recompute"]) / statistics.median(whole["cached"])
    print(f"whole fit (with validation and the one-off caching) speed-up: {fit_ratio:.1f}")
    ratio = statistics.median(per_epoch["recompute"]) / statistics.median(per_epoch["cached"])
    print(f"seconds per epoch, recompute / cached ratio ({device}): {ratio:.1f}")


if __name__ == "__main__":
    main()
