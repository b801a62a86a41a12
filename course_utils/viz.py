"""Looking inside a network: activations via forward hooks, and Grad-CAM."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def named_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name` (e.g. "block1" or "block1.0"), with the valid names on error."""
    layers = dict(model.named_modules())
    if name not in layers or name == "":
        blocks = ", ".join(n for n, _ in model.named_children())
        raise ValueError(f"No layer {name!r}. Blocks: {blocks} (sub-layers as 'block1.0', ...).")
    return layers[name]


@torch.no_grad()
def activations(
    model: nn.Module, images: torch.Tensor, layers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """The output of each named layer for `images`, recorded by forward hooks (removed after)."""
    recorded: dict[str, torch.Tensor] = {}
    handles = [
        named_layer(model, name).register_forward_hook(
            lambda _module, _inputs, output, name=name: recorded.__setitem__(
                name, output.detach().cpu()
            )
        )
        for name in layers
    ]
    try:
        model.eval()(images.to(next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    return recorded


def grad_cam(
    model: nn.Module, images: torch.Tensor, layer: str, target: int | Sequence[int] | None = None
) -> np.ndarray:
    """Grad-CAM heat maps (N×H×W, 0..1, image size) for the `target` classes (default: predicted).

    Each feature map of `layer` is weighted by the average gradient of the class score with
    respect to it; the weighted sum, passed through ReLU, shows where the evidence for the class is.
    Every map is scaled to 0..1 on its own, so a weak map looks as strong as a strong one.
    """
    store: dict[str, torch.Tensor] = {}
    handle = named_layer(model, layer).register_forward_hook(
        lambda _module, _inputs, output: store.__setitem__("maps", output)
    )
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.enable_grad():  # the input needs a gradient too, in case every layer is frozen
            logits = model(images.detach().to(device).requires_grad_(True))
            chosen = (
                logits.argmax(dim=1)
                if target is None
                else torch.as_tensor(target).expand(len(images))
            )
            score = logits.gather(1, chosen.view(-1, 1).to(device)).sum()
            (grads,) = torch.autograd.grad(score, store["maps"])  # leaves parameters' .grad alone
    finally:
        handle.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)  # one weight per feature map
    cam = F.relu((weights * store["maps"]).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cam = cam - cam.flatten(1).min(dim=1).values.view(-1, 1, 1)
    cam = cam / cam.flatten(1).max(dim=1).values.clamp_min(1e-8).view(-1, 1, 1)
    return cam.cpu().numpy()


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A uint8 image (H×W or H×W×3) with a 0..1 heat map blended on top in the 'jet' colours."""
    import matplotlib

    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    colours = matplotlib.colormaps["jet"](heat)[..., :3] * 255
    return ((1 - alpha) * rgb + alpha * colours).clip(0, 255).astype(np.uint8)
