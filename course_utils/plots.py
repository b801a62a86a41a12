"""Figures the notebooks share: training curves, class counts, image grids, confusion matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from course_utils.metrics import confusion_matrix

if TYPE_CHECKING:  # for the type hint only: plotting needs nothing of training at run time
    from course_utils.train import History


def plot_curves(
    histories: Mapping[str, History],
    metric: str = "val_accuracy",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """One metric per epoch for several runs on one axis (e.g. random vs ImageNet init)."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for label, history in histories.items():
        epochs = range(1, len(history.epochs) + 1)
        (line,) = ax.plot(epochs, history[metric], marker="o", label=label)
        if metric == history.monitor:
            ax.plot(history.best_epoch, history.best[metric], "*", ms=14, color=line.get_color())
    ax.set(xlabel="epoch", ylabel=metric.replace("_", " "), title=title or metric.replace("_", " "))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_class_distribution(
    labels: np.ndarray,
    class_names: Sequence[str],
    ax: Axes | None = None,
    title: str = "Images per class",
) -> Axes:
    """Bar chart of images per class, with each class's share in percent."""
    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=len(class_names))
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    bars = ax.bar(class_names, counts, color=sns.color_palette("deep", len(class_names)))
    shares = [f"{c}\n{100 * c / max(counts.sum(), 1):.0f}%" for c in counts]
    ax.bar_label(bars, labels=shares, fontsize=8)
    ax.set(xlabel="class", ylabel="images", title=title, ylim=(0, counts.max() * 1.25 + 1))
    return ax


def show_images(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    predictions: np.ndarray | None = None,
    n: int = 16,
    cols: int = 8,
    title: str | None = None,
) -> Figure:
    """A grid of uint8 images titled with their label (and prediction: green right, red wrong)."""
    n = min(n, len(images))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows + 0.4), squeeze=False)
    labels = np.asarray(labels).reshape(-1)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        grey = images.ndim == 3 or images.shape[-1] == 1
        ax.imshow(images[i].squeeze(), cmap="gray" if grey else None, vmin=0, vmax=255)
        text, colour = class_names[labels[i]], "black"
        if predictions is not None:
            text += f"\n→ {class_names[predictions[i]]}"
            colour = "green" if predictions[i] == labels[i] else "red"
        ax.set_title(text, fontsize=8, color=colour)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    normalize: bool = True,
    ax: Axes | None = None,
    title: str = "Confusion matrix",
) -> Axes:
    """Heatmap of true (rows) vs predicted (columns) classes; rows sum to 1 when normalised."""
    cm = confusion_matrix(y_true, y_pred, len(class_names)).astype(float)
    if normalize:
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax = ax or plt.subplots(figsize=(1 + 0.7 * len(class_names),) * 2)[1]
    sns.heatmap(
        cm,
        annot=True,
        fmt=".2f" if normalize else ".0f",
        cmap="Blues",
        cbar=False,
        ax=ax,
        xticklabels=class_names,
        yticklabels=class_names,
        vmin=0,
    )
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return ax


def show_filters(
    weight: torch.Tensor, n: int = 32, cols: int = 8, title: str = "Filters"
) -> Figure:
    """First-layer filters (out×in×k×k) as small images: RGB when in=3, else the channel mean."""
    w = weight.detach().float().cpu()[:n]
    w = (
        w.permute(0, 2, 3, 1)
        if w.shape[1] == 3
        else w.mean(dim=1, keepdim=True).permute(0, 2, 3, 1)
    )
    rows = int(np.ceil(len(w) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(w):
            f = w[i]
            f = (f - f.min()) / (f.max() - f.min() + 1e-8)  # each filter scaled to 0..1 to be seen
            ax.imshow(f.squeeze().numpy(), cmap="gray" if f.shape[-1] == 1 else None)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_class_examples(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    per_class: int = 6,
    seed: int = 0,
    title: str | None = None,
) -> Figure:
    """One row per class with `per_class` randomly chosen images of it."""
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(class_names),
        per_class,
        squeeze=False,
        figsize=(1.4 * per_class + 1, 1.4 * len(class_names) + 0.4),
    )
    grey = images.ndim == 3 or images.shape[-1] == 1
    for row, name in enumerate(class_names):
        members = np.flatnonzero(labels == row)
        chosen = rng.choice(members, min(per_class, len(members)), replace=False)
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(chosen):
                ax.imshow(
                    images[chosen[col]].squeeze(), cmap="gray" if grey else None, vmin=0, vmax=255
                )
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(f"{name}\n({len(members)})", rotation=0, ha="right", va="center")
    fig.suptitle(title or "Examples per class (images in the class)")
    fig.tight_layout()
    return fig
