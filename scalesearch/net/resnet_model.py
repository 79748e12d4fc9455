"""The ResNet-50 family's torch module, built from a layout of `net.resnet`."""

from __future__ import annotations

import torch
from torch import nn

from scalesearch.net.layers import conv_bn, init_weights


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 (x4), each with batch norm, + shortcut, ReLU."""

    def __init__(self, c_in: int, planes: int, out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(c_in, planes, 1, activation=nn.ReLU),
            conv_bn(planes, planes, 3, stride, activation=nn.ReLU),
            conv_bn(planes, out, 1),
        )
        self.shortcut = (conv_bn(c_in, out, 1, stride) if stride != 1 or c_in != out
                         else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem 7x7/2 -> max pool 3x3/2 -> bottleneck stages -> pool -> linear; a bottleneck's
    output has `expansion` times its planes."""

    def __init__(self, layout: tuple, num_classes: int, expansion: int):
        super().__init__()
        stem, stages = layout
        self.stem = nn.Sequential(conv_bn(3, stem, 7, 2, activation=nn.ReLU),
                                  nn.MaxPool2d(3, 2, 1))
        blocks: list[nn.Module] = []
        channels = stem
        for planes, count, stride in stages:
            for i in range(count):
                blocks.append(Bottleneck(channels, planes, expansion * planes,
                                         stride if i == 0 else 1))
                channels = expansion * planes
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)
        for block in blocks:  # each block starts as its shortcut (short proxies; as B0's)
            nn.init.zeros_(block.body[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, classes)
        x = self.blocks(self.stem(x))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
