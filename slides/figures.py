"""Figures for the slides, drawn from the course's own code and the seed's published tables.

Each function returns a matplotlib Figure; `FIGURES` names them for `![caption](figure:NAME)`.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from course_utils import config, data, experiments, models  # noqa: E402

SMOKE = config.get_profile("smoke")  # the figures fix their sizes; Lite0 has offline weights

# Readable from the back of a room: a slide shows a figure at about 1,100 px wide.
plt.rcParams.update({"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 14})


def _heatmap(table: pd.DataFrame, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(table) + 1.4))
    ax.imshow(table.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=20, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    for (row, col), value in np.ndenumerate(table.to_numpy()):
        ax.text(
            col,
            row,
            f"{value:.2f}",
            ha="center",
            va="center",
            color="white" if value > 0.6 else "black",
            fontsize=10,
        )
    ax.set_title(title)
    fig.tight_layout()
    return fig


def seed_ham10000() -> plt.Figure:
    """The seed slides' F1 table on HAM10000 (VGG16 and two tree baselines)."""
    return _heatmap(experiments.SEED_HAM10000, "F1 on HAM10000 (Patel, 2019)")


def seed_xray() -> plt.Figure:
    """The seed slides' F1 table on the paediatric chest X-rays."""
    return _heatmap(experiments.SEED_XRAY, "F1 on paediatric chest X-rays (Patel, 2019)")


def class_counts() -> plt.Figure:
    """Images per class: HAM10000 and the chest X-ray training set."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [7, 2]})
    for ax, counts, title in [
        (axes[0], data.HAM10000_COUNTS, "HAM10000: 10,015 images (Tschandl et al., 2018)"),
        (axes[1], data.XRAY_COUNTS, "Chest X-ray: 5,856\n(Kermany et al., 2018)"),
    ]:
        ax.bar(list(counts), list(counts.values()), color="#0b6e99")
        ax.set_title(title)
        for x, value in enumerate(counts.values()):
            ax.text(x, value, f"{value:,}", ha="center", va="bottom", fontsize=11)
        ax.set_ylim(0, max(counts.values()) * 1.12)
    fig.tight_layout()
    return fig


def sample_images() -> plt.Figure:
    """The generated offline stand-in images (smoke profile), one row per dataset."""
    fig, axes = plt.subplots(2, 7, figsize=(11, 4.2))
    for row, name in enumerate(data.SAMPLES):
        sample = data.make_sample(name, image_size=64, num_samples=420, seed=0)
        images, labels = sample["train_images"], sample["train_labels"].ravel()
        names = data.class_names(name)
        for col, ax in enumerate(axes[row]):
            label = col % len(names)
            index = int(np.flatnonzero(labels == label)[col // len(names)])
            ax.imshow(images[index], cmap="gray")
            ax.set_title(names[label], fontsize=12)
            ax.axis("off")
    fig.suptitle("Generated offline sample: NOT patient data")
    fig.tight_layout(h_pad=1.2)
    return fig


def vgg16_blocks() -> plt.Figure:
    """Parameters per VGG16 block with the seed's head at 224 px: where its strategies cut."""
    model = models.build_model("vgg16", 7, weights=None, head="seed", image_size=224, profile=SMOKE)
    table = models.block_table(model)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    ax.set_ylim(0, 8.2)
    millions = table["parameters"] / 1e6
    ax.bar(table.index, millions, color="#0b6e99")
    for x, value in enumerate(millions):
        ax.text(x, value, f"{value:.2f} M", ha="center", va="bottom", fontsize=12)
    ax.set_ylabel("parameters (millions)")
    ax.set_title("VGG16 as five blocks and the seed's head (224 px, 7 classes)")
    fig.tight_layout()
    return fig


def strategies() -> plt.Figure:
    """Which VGG16 blocks train in each of the seed's strategies."""
    blocks = ["block1", "block2", "block3", "block4", "block5", "head"]
    grid = np.array(
        [
            [block in trained or block == "head" for block in blocks]
            for trained in experiments.STRATEGIES.values()
        ]
    )
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.imshow(grid, cmap="Oranges", vmin=0, vmax=1.6, aspect="auto")
    ax.set_xticks(range(len(blocks)), blocks)
    ax.set_yticks(range(len(grid)), list(experiments.STRATEGIES))
    for (row, col), trains in np.ndenumerate(grid):
        ax.text(col, row, "trains" if trains else "frozen", ha="center", va="center", fontsize=11)
    ax.set_title("Freeze strategies (seed slides)")
    fig.tight_layout()
    return fig


def _cost(arch: str, cut: str | None = None) -> tuple[float, float]:
    model = models.build_model(arch, 7, weights=None, image_size=224, profile=SMOKE)
    if cut:
        model = models.truncate(model, cut, 7, image_size=224)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, 224, 224))
    return models.count_parameters(model) / 1e6, counter.get_total_flops() / 1e9


def zoo_cost() -> plt.Figure:
    """Parameters against FLOPs (224 px) for the architectures of notebook 09."""
    # Label offsets (points) that keep the crowded cheap corner readable.
    offsets = {
        "mobilenet_v3_large": (-30, 22),
        "mobilenet_v2": (10, -2),
        "squeezenet1_1": (10, -10),
        "efficientnet_lite0": (10, 2),
        "resnet50": (-80, -4),
        "vgg16": (-60, 8),
    }
    fig, ax = plt.subplots(figsize=(10, 4.6))
    for arch in models.ARCHITECTURES:
        params, gflops = _cost(arch)
        ax.scatter(gflops, params, color="#0b6e99", s=40)
        ax.annotate(arch, (gflops, params), textcoords="offset points", fontsize=12,
                    xytext=offsets.get(arch, (8, 4)))  # fmt: skip
    ax.set_ylim(-1, 27)
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs per 224 px image (log scale)")
    ax.set_ylabel("parameters (millions, 7 classes)")
    ax.set_title("Cost of the architecture zoo")
    fig.tight_layout()
    return fig


def truncation() -> plt.Figure:
    """Parameters before and after cutting the last block (notebook 09)."""
    rows = {
        f"{arch}{label}": _cost(arch, cut)[0]
        for arch in ("densenet121", "resnet50")
        for label, cut in (("", None), (" to block3", "block3"))
    }
    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.set_xlim(0, 28)
    ax.barh(list(rows), list(rows.values()), color=["#0b6e99", "#e08a2e"] * 2)
    for y, value in enumerate(rows.values()):
        ax.text(value, y, f" {value:.1f} M", va="center", fontsize=12)
    ax.invert_yaxis()
    ax.set_xlabel("parameters (millions)")
    fig.tight_layout()
    return fig


def rotations() -> plt.Figure:
    """One lesion under the eight rotations and flips that `rotate_flip` draws from."""
    image = data.make_sample("derma", image_size=64, num_samples=20, seed=1)["train_images"][0]
    fig, axes = plt.subplots(1, 8, figsize=(11, 2.3))
    for i, ax in enumerate(axes):
        view = np.rot90(image, k=i % 4)
        ax.imshow(np.fliplr(view) if i >= 4 else view)
        ax.set_title(f"{90 * (i % 4)}°" + ("\n+ flip" if i >= 4 else ""), fontsize=12)
        ax.axis("off")
    fig.tight_layout()
    return fig


def first_layer_filters() -> plt.Figure:
    """EfficientNet-Lite0's first-layer filters: ImageNet-trained (shipped offline) vs random."""
    fig, axes = plt.subplots(2, 16, figsize=(11, 1.8))
    for row, weights in enumerate(["imagenet", None]):
        with torch.random.fork_rng():  # the same "random" filters in every build
            torch.manual_seed(0)
            model = models.build_model("efficientnet_lite0", 7, weights=weights, profile=SMOKE)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        filters = conv.weight.detach()[:16]
        low = filters.amin(dim=(1, 2, 3), keepdim=True)
        high = filters.amax(dim=(1, 2, 3), keepdim=True)
        filters = ((filters - low) / (high - low + 1e-8)).permute(0, 2, 3, 1).numpy()
        for ax, f in zip(axes[row], filters, strict=True):
            ax.imshow(f, interpolation="nearest")
            ax.axis("off")
        axes[row][0].set_title("ImageNet" if weights else "random", fontsize=12, loc="left")
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[], plt.Figure]] = {
    f.__name__: f
    for f in (
        seed_ham10000,
        seed_xray,
        class_counts,
        sample_images,
        vgg16_blocks,
        strategies,
        zoo_cost,
        truncation,
        rotations,
        first_layer_filters,
    )
}
