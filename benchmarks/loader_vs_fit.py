"""Is data ever the bottleneck? Images/s the loader delivers vs images/s `fit` consumes.

The loader serves normalised batches from the cached uint8 array (what every notebook trains
on); `fit` trains resnet18 at 64 px on the same batches. Both measured in one run; the last line
ends with the ratio loader / fit (target ≥ 5 on a CPU).

    .venv/bin/python benchmarks/loader_vs_fit.py [--arch resnet18] [--image-size 64]
"""

from __future__ import annotations

import argparse

from common import compare, sample_loader

from course_utils import build_model, fit, get_device, seed_everything
from course_utils.config import get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    seed_everything(0)
    device = get_device()
    loader = sample_loader(args.arch, args.image_size, args.samples, args.batch_size)
    model = build_model(args.arch, 7, weights=None, profile=get_profile("smoke"))
    count = len(loader.dataset)
    print(f"{args.arch} at {args.image_size} px, {count} images, batch {args.batch_size}, {device}")

    def drain() -> None:  # what the loader alone can deliver, moved to the training device
        for images, labels in loader:
            images.to(device), labels.to(device)

    runs = {"loader": drain, "fit": lambda: fit(model, loader, epochs=1, progress=False)}
    rates = compare(runs, count, args.repeats)
    print(f"loader / fit images/s ratio ({device}): {rates['loader'] / rates['fit']:.1f}")


if __name__ == "__main__":
    main()
