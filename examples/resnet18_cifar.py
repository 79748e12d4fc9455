"""A family of one's own: a ResNet-18-style network for 32 px images, scaled by scalesearch.

    scalesearch flops --base examples.resnet18_cifar:family --depth 1.5 --resolution 40
    scalesearch run --base examples.resnet18_cifar:family --budget 2x

(from the repository's root: the current folder is where `package.module` is looked for
first). A family is any object with `resolution`, `layout(depth_mult, width_mult)` and
`build(layout, num_classes)`; `count(layout, resolution, num_classes)` and `proxy` are
optional. This one has no count, so scalesearch counts its networks with fvcore (cached on
disk). The layout is the network's structure after rounding: two multipliers that give the
same layout are the same network, so it holds every rounded number and nothing else.
"""

from __future__ import annotations

import math

import torch
from torch import nn

STEM = 64
STAGES = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))  # channels, blocks, stride


def round_to_8(channels: float) -> int:
    """Nearest multiple of 8, at least 8."""
    return max(8, int(channels + 4) // 8 * 8)


class BasicBlock(nn.Module):
    """3x3 conv (stride) -> BN -> ReLU -> 3x3 conv -> BN, plus a 1x1 shortcut where needed."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet18Cifar:
    """ResNet-18 with a 3x3 stem and no max pool (the usual CIFAR variant)."""

    resolution = 32
    # The base a study starts from unless it says otherwise: half the blocks, a quarter of the
    # channels (a CPU-sized proxy; without it a study scales the full network).
    proxy = (0.5, 0.25, 32)

    def layout(self, depth_mult: float, width_mult: float) -> tuple:
        """(stem channels, ((channels, blocks, stride), ...)) after rounding."""
        return (round_to_8(STEM * width_mult),
                tuple((round_to_8(c * width_mult), math.ceil(n * depth_mult), s)
                      for c, n, s in STAGES))

    def build(self, layout: tuple, num_classes: int) -> nn.Module:
        stem, stages = layout
        layers: list[nn.Module] = [nn.Conv2d(3, stem, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
        channels = stem
        for out, blocks, stride in stages:
            for i in range(blocks):
                layers.append(BasicBlock(channels, out, stride if i == 0 else 1))
                channels = out
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(channels, num_classes))


family = ResNet18Cifar()
