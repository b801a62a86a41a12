"""What caching the frozen blocks gains, and how close `fit` comes to the limit of caching.

1. VGG16 "last block trainable": with blocks 1-4 frozen (and no augmentation), `fit` computes
   their output once and trains only block 5 and the seed's head on it; `cache_frozen=False`
   recomputes them every epoch. Both train the same model on the same data at smoke sizes; runs
   alternate. Prints the ratio of seconds per epoch, recomputing / cached (target ≥ 4 on a CPU).

2. Head-only ResNet-18 (every block frozen, the linear head trainable), no validation set:
   `fit` with the cache against the limit of computing the features once, a bare loop that runs
   the frozen blocks once over the training images (eval mode, no_grad, chunks of 256 as fit)
   and then trains the head on those features for the same epochs, with the same batches
   (the loader's sampler) and optimiser (fused Adam). Both sides are timed whole, the one-off
   feature pass included, from the same model; runs alternate. Prints fit / limit in images/s
   (training images × epochs per second of the whole call; target ≥ 0.9 on a CPU) and, for
   the head training alone, the same ratio per epoch (fit's `train_seconds`).

    .venv/bin/python benchmarks/frozen_prefix.py [--image-size 32] [--samples 294] [--epochs 3]
    .venv/bin/python benchmarks/frozen_prefix.py --only head-only [--head-only-epochs 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import ratios, sample_loader, timed
from torch import nn

from course_utils import build_model, fit, freeze, get_device, make_loader, make_sample
from course_utils.config import get_profile
from course_utils.models import input_stats
from course_utils.train import frozen_prefix_length, make_optimizer


def vgg16_last_block(args: argparse.Namespace, device: torch.device) -> None:
    """Seconds per epoch of fit, recomputing the frozen blocks vs computing them once."""
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


def features_once_loop(
    model: nn.Sequential, loader, epochs: int, lr: float, device: torch.device
) -> list[float]:
    """The limit of caching: frozen blocks run once, then the head alone; seconds per epoch."""
    use_amp = device.type == "cuda"
    model.to(device)
    n = frozen_prefix_length(model)
    prefix, head = model[:n].eval(), model[n:]
    dataset = loader.dataset
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
        features = torch.cat(
            [
                prefix(dataset[list(range(i, min(i + 256, len(dataset))))][0].to(device))
                for i in range(0, len(dataset), 256)
            ]
        )
    labels = dataset.labels.to(device)
    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, lr, device=device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = nn.CrossEntropyLoss()
    head.train()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for index in loader.sampler:
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = loss_fn(head(features[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if use_amp:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds


def resnet18_head_only(args: argparse.Namespace, device: torch.device) -> None:
    """Images/s of fit (frozen blocks cached) vs the features-computed-once limit."""
    loader = sample_loader("resnet18", args.head_only_size, args.head_only_samples, 64)
    model = build_model(
        "resnet18", 7, weights=None, image_size=args.head_only_size, profile=get_profile("smoke")
    )
    freeze(model)  # every block frozen; the head trains
    epochs = args.head_only_epochs
    print(
        f"\nResNet-18 head only, {len(loader.dataset)} training images of {args.head_only_size} "
        f"px, batch 64, {epochs} epochs per run, no validation, {device}"
    )
    count = len(loader.dataset)
    per_epoch: dict[str, list[float]] = {"limit": [], "fit": []}  # images/s of every epoch

    def limit() -> None:
        seconds = features_once_loop(model, loader, epochs, 1e-3, device)
        per_epoch["limit"] += [count / s for s in seconds]

    def with_fit() -> None:
        history = fit(model, loader, epochs=epochs, lr=1e-3, device=device, progress=False)
        per_epoch["fit"] += [count / s for s in history["train_seconds"]]

    features_once_loop(model, loader, 1, 1e-3, device)  # warm-up: allocator, kernels, caches
    rates = timed({"limit": limit, "fit": with_fit}, count * epochs, args.head_only_repeats)
    print(f"head training alone, per epoch, fit / limit: {ratios(per_epoch, 'fit', 'limit')}")
    whole = ratios(rates, "fit", "limit")
    print(f"head-only whole call, fit / features-once limit images/s ratio ({device}): {whole}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("vgg16", "head-only"), help="run one of the two")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=294, help="training images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--head-only-size", type=int, default=64)
    parser.add_argument("--head-only-samples", type=int, default=512, help="training images")
    parser.add_argument("--head-only-epochs", type=int, default=10)
    parser.add_argument("--head-only-repeats", type=int, default=5)
    args = parser.parse_args()

    device = get_device()
    if args.only != "head-only":
        vgg16_last_block(args, device)
    if args.only != "vgg16":
        resnet18_head_only(args, device)


if __name__ == "__main__":
    main()
