"""The MobileNetV2 and MobileNetV1 families' torch modules, built from layouts of
`net.mobilenet`."""

from __future__ import annotations

import torch
from torch import nn

from scalesearch.net.layers import conv_bn, init_weights


class InvertedResidual(nn.Module):
    """[1x1 expand, ReLU6] -> 3x3 depthwise (stride), ReLU6 -> 1x1 linear (+ x)."""

    def __init__(self, c_in: int, c_out: int, expand: int, stride: int):
        super().__init__()
        hidden = int(round(c_in * expand))
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(c_in, hidden, 1, activation=nn.ReLU6))
        layers += [conv_bn(hidden, hidden, 3, stride, depthwise=True, activation=nn.ReLU6),
                   conv_bn(hidden, c_out, 1)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


class MobileNetV2Net(nn.Module):
    def __init__(self, layout: tuple, num_classes: int, dropout: float):
        super().__init__()
        stem, stages, last = layout
        layers: list[nn.Module] = [conv_bn(3, stem, 3, 2, activation=nn.ReLU6)]
        channels = stem
        for expand, out, blocks, stride in stages:
            for i in range(blocks):
                layers.append(InvertedResidual(channels, out, expand, stride if i == 0 else 1))
                channels = out
        layers.append(conv_bn(channels, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last, num_classes)
        init_weights(self)
        for m in self.modules():  # residual blocks start as the identity (as B0's)
            if isinstance(m, InvertedResidual) and m.residual:
                nn.init.zeros_(m.body[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, classes)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.classifier(self.dropout(x))


class MobileNetV1Net(nn.Module):
    def __init__(self, layout: tuple, num_classes: int):
        super().__init__()
        stem, stages = layout
        layers: list[nn.Module] = [conv_bn(3, stem, 3, 2, activation=nn.ReLU)]
        channels = stem
        for out, blocks, stride in stages:
            for i in range(blocks):
                layers += [conv_bn(channels, channels, 3, stride if i == 0 else 1,
                                   depthwise=True, activation=nn.ReLU),
                           conv_bn(channels, out, 1, activation=nn.ReLU)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, classes)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.classifier(x)
