"""Interactive explorers (ipywidgets); notebooks also draw a static figure for plain viewers.

Colab ships ipywidgets 7 and JupyterLab gets 8, so these use only what both provide: plain
sliders, a dropdown and an Output, keyword arguments, and `observe(..., names="value")`.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import clear_output


def activation_explorer(
    images: np.ndarray, maps: dict[str, torch.Tensor], titles: Sequence[str] | None = None
) -> widgets.VBox:
    """Pick an image, a layer and a channel; see that channel's feature map beside the image.

    maps: layer name → activations (N×C×H×W) for the same N images, e.g. from viz.activations.
    """
    layer_names = list(maps)
    image = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image")
    layer = widgets.Dropdown(options=layer_names, description="layer")
    channels = maps[layer_names[0]].shape[1]
    channel = widgets.IntSlider(value=0, min=0, max=channels - 1, description="channel")
    output = widgets.Output()

    def draw(*_: object) -> None:
        channel.max = maps[layer.value].shape[1] - 1  # the value drops to a new max (7 and 8)
        fmap = maps[layer.value][image.value, channel.value].numpy()
        with output:
            clear_output(wait=True)
            fig, axes = plt.subplots(1, 2, figsize=(8, 4))
            picture = images[image.value]
            axes[0].imshow(picture.squeeze(), cmap="gray" if picture.ndim == 2 else None)
            axes[0].set_title(titles[image.value] if titles else f"image {image.value}")
            shown = axes[1].imshow(fmap, cmap="viridis")
            axes[1].set_title(
                f"{layer.value}, channel {channel.value} ({fmap.shape[0]}×{fmap.shape[1]})"
            )
            fig.colorbar(shown, ax=axes[1], label="activation")
            for ax in axes:
                ax.axis("off")
            plt.show()

    for control in (image, layer, channel):
        control.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([image, layer, channel]), output])


def mistake_gallery(
    images: np.ndarray, table: pd.DataFrame, per_page: int = 12, cols: int = 6
) -> widgets.VBox:
    """Page through misclassified images (a `errors.mistakes` table), surest mistakes first."""
    pages = max(1, int(np.ceil(len(table) / per_page)))
    page = widgets.IntSlider(
        value=1,
        min=1,
        max=pages,
        description=f"page (of {pages})",
        style={"description_width": "initial"},  # the whole label, not cut at 80 px
    )
    output = widgets.Output()

    def draw(*_: object) -> None:
        rows = table.iloc[(page.value - 1) * per_page : page.value * per_page]
        with output:
            clear_output(wait=True)
            draw_mistakes(images, rows, cols)
            plt.show()

    page.observe(draw, names="value")
    draw()
    return widgets.VBox([page, output])


def draw_mistakes(images: np.ndarray, rows: pd.DataFrame, cols: int = 6) -> plt.Figure:
    """A static grid of mistakes titled "true → predicted (confidence)"."""
    count = max(len(rows), 1)
    grid_rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(grid_rows, cols, figsize=(1.9 * cols, 2.1 * grid_rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, rows.itertuples(), strict=False):
        picture = images[row.index]
        ax.imshow(picture.squeeze(), cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(
            f"{row.true} → {row.predicted}\n({row.confidence:.2f})", fontsize=8, color="red"
        )
    fig.suptitle(f"{len(rows)} misclassified images: true → predicted (confidence)")
    fig.tight_layout()
    return fig
