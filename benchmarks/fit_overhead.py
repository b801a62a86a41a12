"""Images/s of `course_utils.fit` against a bare hand-written PyTorch loop, measured in one run.

Both train the same architecture on the same in-memory data through the same loader; their runs
alternate so that machine noise hits both alike. The last line ends with the ratio fit / bare.

    .venv/bin/python benchmarks/fit_overhead.py [--arch resnet18] [--image-size 32] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch
from common import compare, sample_loader
from torch import nn

from course_utils import build_model, fit, get_device, seed_everything
from course_utils.config import get_profile


def bare_loop(model: nn.Module, loader, epochs: int, lr: float, device: torch.device) -> None:
    """The textbook loop: nothing but forward, loss, backward and step."""
    use_amp = device.type == "cuda"
    if use_amp:
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            if use_amp:
                images = images.to(device, non_blocking=True, memory_format=torch.channels_last)
            else:
                images = images.to(device)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = loss_fn(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed run")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    seed_everything(0)
    device = get_device()
    loader = sample_loader(args.arch, args.image_size, args.samples, args.batch_size)
    images = len(loader.dataset) * args.epochs
    model = build_model(args.arch, 7, weights=None, profile=get_profile("smoke"))
    print(
        f"{args.arch} at {args.image_size} px, {len(loader.dataset)} images, batch "
        f"{args.batch_size}, {args.epochs} epochs per run, device {device}, "
        f"{torch.get_num_threads()} threads"
    )

    bare_loop(model, loader, 1, 1e-3, device)  # warm-up: allocator, kernels, caches
    runs = {
        "bare": lambda: bare_loop(model, loader, args.epochs, 1e-3, device),
        # the whole call is timed: optimiser set-up, progress bar, keeping the best weights
        "fit": lambda: fit(model, loader, epochs=args.epochs, lr=1e-3, device=device),
    }
    rates = compare(runs, images, args.repeats)
    print(f"fit / bare images/s ratio ({device}): {rates['fit'] / rates['bare']:.3f}")


if __name__ == "__main__":
    main()
