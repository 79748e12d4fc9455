"""Conv + batch norm (+ activation) for the layout families (`resnet`, `mobilenet`).

Padding is ``kernel // 2`` (torchvision's for these networks), convs carry no bias, and a
depthwise conv is a `DepthwiseConv2d` (the CPU-fast weight gradient of `net.depthwise`); batch
norm keeps torchvision's eps and momentum. `analytic.conv_bn` counts exactly this.
"""

from __future__ import annotations

from torch import nn

from scalesearch.net.depthwise import DepthwiseConv2d


def conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1,
            depthwise: bool = False, activation: type[nn.Module] | None = None
            ) -> nn.Sequential:
    """(in, H, W) -> (out, H', W'), H' = (H + 2 * (kernel // 2) - kernel) // stride + 1."""
    if depthwise:
        conv: nn.Conv2d = DepthwiseConv2d(in_channels, kernel, stride)
    else:
        conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False)
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(out_channels)]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


def init_weights(model: nn.Module) -> None:
    """He-normal (fan out) convs with zero biases, unit batch norms, a zero classifier (the
    reference implementations', but for the classifier: zero, for short proxies)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
