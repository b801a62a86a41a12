"""Heads and pooling for feature maps of any rank: what sits on top of a network's blocks."""

from __future__ import annotations

import math

import torch
from torch import nn

HEADS = ("linear", "seed")


# Feature maps are B×C×H×W (convolutions, channels first; any B×C×… alike), B×N×C (a
# transformer's tokens, channels last, as torchvision's ViT emits them) or B×C (already pooled).
def global_pool(x: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Each image's feature map averaged over all but its channels: B×C (keepdim: B×C×1×1 …)."""
    if x.ndim == 2:
        return x
    out = x.mean(dim=(1,) if x.ndim == 3 else tuple(range(2, x.ndim)), keepdim=True)
    return out if keepdim else out.flatten(1)


class GlobalAvgPool(nn.Module):
    """nn.AdaptiveAvgPool2d(1) (which computes this very mean) for feature maps of any rank."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return global_pool(x, keepdim=True)


class SizedFlatten(nn.Flatten):
    """nn.Flatten for a head built for one feature-map shape; says what to do on another."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"This head flattens feature maps of shape {self.shape} but got "
                f"{tuple(x.shape[1:])}: the images are not the size the model was built for. "
                f"Pass image_size=<your images' size> to build_model."
            )
        return super().forward(x)


def make_head(
    features: tuple[int, ...],
    num_classes: int,
    kind: str = "linear",
    hidden: tuple[int, int] = (256, 128),
    dropout: float = 0.5,
) -> nn.Sequential:
    """A head for one image's feature map of shape `features` (C×H×W, N×C tokens or C):
    global average pooling + linear (any input size), or the seed's flatten + dense layers."""
    if kind == "linear":
        channels = features[-1] if len(features) == 2 else features[0]  # N×C tokens: C last
        return nn.Sequential(
            GlobalAvgPool(), nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels, num_classes)
        )
    if kind == "seed":
        # flatten → dense → dropout → dense → dropout → dense, as in the seed slides (Keras).
        # At 224 px VGG16's features are 512×7×7, so the first dense layer sees 25,088 inputs.
        return nn.Sequential(
            SizedFlatten(features),
            nn.Linear(math.prod(features), hidden[0]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden[1], num_classes),
        )
    raise ValueError(f"Unknown head {kind!r}. Choose one of: {', '.join(HEADS)}.")
