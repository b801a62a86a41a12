"""Images/s of `fit` fed by `make_loader` against the true limit: a bare loop over ready tensors.

"fit" is the whole call `fit(model, make_loader(...))` on the uint8 array, as every notebook
trains: the loader gathers, permutes and normalises each shuffled batch, and fit adds its
bookkeeping (progress bar, metrics, keeping the best weights). "bare" is a hand-written loop with
the same model and optimiser settings (fused Adam on CPU and CUDA, AMP and channels_last on CUDA
only) over a list of contiguous float32 batches normalised once, before any timing: nothing but
forward, loss, backward and step. Runs alternate so that machine noise hits both alike; the last
line ends with the ratio fit / bare of the median and of the best repeats (target ≥ 0.95
on CPU).

--strided serves the loader's batches with channels-last strides, the layout ArrayDataset gave
before it made each batch contiguous, to show what that layout costs.

    .venv/bin/python benchmarks/fit_overhead.py [--arch resnet18] [--image-size 64] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch
from common import ratios, sample_loader, timed
from torch import nn

from course_utils import build_model, fit, get_device, seed_everything
from course_utils.config import get_profile
from course_utils.data import ArrayDataset
from course_utils.train import make_optimizer


def bare_loop(
    model: nn.Module, batches: list, epochs: int, lr: float, device: torch.device
) -> None:
    """The textbook loop over ready batches: nothing but forward, loss, backward and step."""
    use_amp = device.type == "cuda"
    if use_amp:
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    optimizer = make_optimizer(model.parameters(), lr, device=device)  # fused Adam, as in fit
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for images, labels in batches:
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = loss_fn(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize()


def ready_batches(loader, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches once, as contiguous float32 tensors already on the device."""
    if device.type == "cuda":  # the layout fit gives them on CUDA
        return [(x.to(device, memory_format=torch.channels_last), y.to(device)) for x, y in loader]
    return [(x.contiguous(), y) for x, y in loader]


class StridedDataset(ArrayDataset):
    """ArrayDataset serving channels-last-strided batches: its layout before the contiguity fix."""

    def __getitem__(self, index):
        images, labels = super().__getitem__(index)
        return images.contiguous(memory_format=torch.channels_last), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--strided", action="store_true", help="loader batches channels-last")
    args = parser.parse_args()

    seed_everything(0)
    device = get_device()
    loader = sample_loader(args.arch, args.image_size, args.samples, args.batch_size)
    batches = ready_batches(loader, device)  # normalised once, outside the timing
    if args.strided:
        loader.dataset.__class__ = StridedDataset
    images, _ = next(iter(loader))
    images_count = len(loader.dataset) * args.epochs
    model = build_model(
        args.arch, 7, weights=None, image_size=args.image_size, profile=get_profile("smoke")
    )
    print(
        f"{args.arch} at {args.image_size} px, {len(loader.dataset)} images, batch "
        f"{args.batch_size}, {args.epochs} epochs per run, device {device}, "
        f"{torch.get_num_threads()} threads; loader batches contiguous: {images.is_contiguous()}"
    )

    bare_loop(model, batches, 1, 1e-3, device)  # warm-up: allocator, kernels, caches
    runs = {
        "bare": lambda: bare_loop(model, batches, args.epochs, 1e-3, device),
        # the whole call is timed: optimiser set-up, progress bar, keeping the best weights
        "fit": lambda: fit(model, loader, epochs=args.epochs, lr=1e-3, device=device),
    }
    rates = timed(runs, images_count, args.repeats)
    print(f"fit / bare images/s ratio ({device}): {ratios(rates, 'fit', 'bare')}")


if __name__ == "__main__":
    main()
