"""The seed experiments: the freeze strategies and the training protocols of the seed's runs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_utils.config import Profile, seed_everything
from course_utils.data import make_loader
from course_utils.datasets import ImageSet
from course_utils.models import (
    LITE_BN_MOMENTUM,
    MIN_IMAGE_SIZE,
    available_weights,
    build_model,
    freeze,
    input_stats,
    truncate,
)
from course_utils.published import REFERENCES, SEED_HAM10000, SEED_XRAY  # noqa: F401 (notebooks)
from course_utils.results import Run, load_weights, reuse, run_info, train_or_load

# Which VGG16 blocks train in each strategy of the seed slides (the head always trains).
STRATEGIES = {
    "all layers": ("block1", "block2", "block3", "block4", "block5"),
    "last block": ("block5",),
    "first block": ("block1",),
    "first + last blocks": ("block1", "block5"),
    "feature extractor": (),
}

# Kept runs that other notebooks start from, and the notebook that trains each.
TRAINED_IN = {
    "vgg16_all_layers": "notebook 05_freeze_strategies",
    "lite0_derma": "notebook 07_activation_visualisation",
    "lite0_xray": "notebook 07_activation_visualisation",
}


def make_loaders(splits: dict[str, ImageSet], arch: str, batch_size: int) -> dict[str, DataLoader]:
    """A loader per split, normalised as `arch`'s weights expect; only "train" is shuffled."""
    mean, std = input_stats(arch)
    return {
        name: make_loader(
            part.images,
            part.labels,
            batch_size=batch_size,
            mean=mean,
            std=std,
            shuffle=name == "train",
        )
        for name, part in splits.items()
    }


def split_digest(splits: dict[str, ImageSet]) -> str:
    """A fingerprint of which lesions/patients sit in which split (part of a run's recipe)."""
    groups = b"|".join(part.groups.astype(str).tobytes() for part in splits.values())
    return hashlib.md5(groups).hexdigest()


def pixels(data: ImageSet) -> np.ndarray:
    """Every image as one row of raw pixel values (the trees' features in the seed slides)."""
    return data.images.reshape(len(data.images), -1)


def _protocol_run(
    name: str,
    make: Callable[[str | None], nn.Module],
    arch: str,
    splits: dict[str, ImageSet],
    recipe: dict,
    profile: Profile,
    lr: float,
    rerun: bool,
    weights: str | None,
    budget: tuple[int | None, int],
) -> tuple[nn.Module, Run]:
    """Train or reuse with the seed's protocol: the profile's epochs, early stopping on val loss.

    budget: (epochs, seed); epochs None means the profile's, and the patience grows with them.
    make(weights) builds the model, after seed_everything(seed). A kept run that started from
    ImageNet weights is reused even when the weights file is not on disk (a room without
    network); only training needs the file, and in smoke a failed download then falls back to
    random weights, recorded as such.
    """
    epochs, seed = budget
    epochs = epochs or profile.epochs
    seed_everything(seed)  # the run draws the same weights and batches whatever ran before it
    loaders = make_loaders(splits, arch, profile.batch_size)
    source = splits["train"].source
    fit_args = {
        "epochs": epochs,
        "lr": lr,
        "patience": profile.patience * epochs // profile.epochs,
        "monitor": "val_loss",
    }
    recipe = recipe | {"seed": seed}
    imagenet = weights == "imagenet"
    if imagenet and not rerun and not available_weights()[arch]:
        with torch.random.fork_rng():  # looking must not change what a training run would draw
            skeleton = make(None)
        info = recipe | {"weights": "imagenet"}
        kept = reuse(name, skeleton, source=source, profile=profile, info=info, **fit_args)
        if kept is not None:
            return skeleton, kept
    model = make(weights)
    if "weights" not in recipe:  # after make(): downloaded, or random weights in smoke
        on_disk = available_weights()[arch]
        start = "imagenet" if on_disk else "random (ImageNet unavailable)"
        recipe = recipe | {"weights": start if imagenet else "random"}
    run = train_or_load(
        name, model, loaders, source=source, profile=profile, rerun=rerun, info=recipe, **fit_args
    )
    return model, run


def vgg16_run(
    name: str,
    splits: dict[str, ImageSet],
    *,
    trainable: tuple[str, ...],
    weights: str | None = "imagenet",
    init_from: str | None = None,
    profile: Profile,
    lr: float = 1e-4,
    epochs: int | None = None,
    seed: int = 0,
    rerun: bool = False,
) -> Run:
    """Train (or reuse) VGG16 with the seed's head, `trainable` blocks unfrozen, as in the slides.

    epochs: the budget (default the profile's; patience grows in proportion); seed: for the run.

    init_from: the name of a kept run whose weights (all but the head) start this one, e.g.
    VGG16 trained on HAM10000 to start the chest X-ray model. Early stopping on validation loss.
    The run's info["recipe"]["weights"] says which weights it really started from.
    """
    classes = len(splits["train"].class_names)

    def make(weights: str | None) -> nn.Module:
        model = build_model("vgg16", classes, weights=weights, head="seed", profile=profile)
        if init_from:
            load_weights(model, init_from, profile, skip_head=True)
        return freeze(model, trainable=trainable)

    recipe = {
        "arch": "vgg16",
        "head": "seed",
        "trainable": list(trainable),
        "image_size": profile.image_size,
        "split": split_digest(splits),
    }
    if init_from:
        kept = run_info(init_from, profile)
        if kept is None:
            notebook = TRAINED_IN.get(init_from, "the notebook that trains it")
            raise FileNotFoundError(
                f"Run {init_from!r} is not kept in the {profile.name} profile's results, so it "
                f"cannot start {name!r}. Run {notebook} first (in the same results folder), or "
                f"train it here with vgg16_run({init_from!r}, ...) as notebook 06 does."
            )
        recipe["weights"] = f"run {init_from} saved {kept['saved']}"
    start = None if init_from else weights
    budget = (epochs, seed)
    return _protocol_run(name, make, "vgg16", splits, recipe, profile, lr, rerun, start, budget)[1]


def lite0_run(
    name: str, splits: dict[str, ImageSet], profile: Profile, rerun: bool = False
) -> tuple[nn.Module, Run]:
    """EfficientNet-Lite0 from its (offline) ImageNet weights, every layer fine-tuned; kept.

    Notebooks 07 and 08 look inside and at the mistakes of the same two models, one per dataset.
    """
    return arch_run(name, "efficientnet_lite0", splits, profile=profile, lr=3e-4, rerun=rerun)


def arch_run(
    name: str,
    arch: str,
    splits: dict[str, ImageSet],
    *,
    weights: str | None = "imagenet",
    cut: str | None = None,
    profile: Profile,
    lr: float = 1e-4,
    epochs: int | None = None,
    seed: int = 0,
    rerun: bool = False,
) -> tuple[nn.Module, Run]:
    """Fine-tune any architecture (all layers, linear head) on `splits`; optionally truncated.

    epochs: the budget (default the profile's; patience grows in proportion); seed: for the run.

    Images smaller than the architecture allows (Inception v3: 75 px) are enlarged first.
    cut: keep the blocks up to this one (models.truncate), as CheXtransfer did.
    """
    size = max(splits["train"].images.shape[1], MIN_IMAGE_SIZE.get(arch, 1))
    splits = {key: part.resized(size) for key, part in splits.items()}
    classes = len(splits["train"].class_names)

    def make(weights: str | None) -> nn.Module:
        model = build_model(arch, classes, weights=weights, image_size=size, profile=profile)
        return truncate(model, cut, classes, image_size=size) if cut else model

    recipe = {
        "arch": arch,
        "cut": cut,
        "lite_bn_momentum": LITE_BN_MOMENTUM if arch == "efficientnet_lite0" else None,
        "image_size": size,
        "split": split_digest(splits),
    }
    budget = (epochs, seed)
    return _protocol_run(name, make, arch, splits, recipe, profile, lr, rerun, weights, budget)
