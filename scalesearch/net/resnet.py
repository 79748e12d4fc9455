"""ResNet-50 (He et al. 2016) as a family: torchvision's layout, scaled by depth and width.

torchvision's `resnet50` (v1.5: the stride sits on the 3x3 conv of a bottleneck): a 7x7/2 stem
conv of 64 channels, a 3x3/2 max pool, four stages of 3, 4, 6 and 3 bottlenecks (1x1 to
``planes``, 3x3, 1x1 to ``4 * planes``; planes 64, 128, 256, 512; the first block of stages 2-4
has stride 2, and a 1x1 conv + batch norm shortcut where the shape changes), global average
pooling and a linear classifier. At multipliers 1 it has torchvision's 25,557,032 parameters
(1,000 classes).

Scaling (the paper's section 3 applied to this layout):
- depth: each stage's blocks become ``ceil(blocks * d)`` (B0's rule);
- width: the stem's channels and every stage's ``planes`` become ``round_channels(c * w)``,
  a multiple of 8 never more than 10% below ``c * w`` (B0's rule, and torchvision's
  `_make_divisible`); a bottleneck's output stays ``4 * planes``.
Counts follow fvcore as `analytic` states; the max pool is not counted (fvcore has no handle).
"""

from __future__ import annotations

from scalesearch.net.analytic import Counts, conv_bn, pooled_classifier
from scalesearch.net.scaling import round_channels, round_repeats

STEM = 64
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # planes, blocks, stride
EXPANSION = 4


class ResNet50:
    resolution = 224
    # Quarter-depth (1, 1, 2, 1 blocks), quarter-width at 36 px (2.0x the FLOPs of the default
    # B0 proxy, 0.64x its activations): 29 distinct networks at 2x on a grid of 45 directions,
    # against 8 at 32 px, where each extra pixel adds a row to every map (README, "Base
    # networks").
    proxy = (0.25, 0.25, 36)

    def layout(self, depth_mult: float, width_mult: float) -> tuple:
        """(stem channels, ((planes, blocks, stride), ...))."""
        stages = tuple((round_channels(p * width_mult), round_repeats(n, depth_mult), s)
                       for p, n, s in STAGES)
        return (round_channels(STEM * width_mult), stages)

    def stages(self, layout: tuple) -> list[dict]:
        stem, stages = layout
        return [{"stage": "stem", "out_channels": stem, "repeats": 1, "kernel": 7,
                 "stride": 2}] + [
            {"stage": str(i), "out_channels": EXPANSION * p, "repeats": n, "expand": p,
             "kernel": 3, "stride": s} for i, (p, n, s) in enumerate(stages, start=1)]

    def build(self, layout: tuple, num_classes: int):
        from scalesearch.net.resnet_model import ResNet

        return ResNet(layout, num_classes, EXPANSION)

    def count(self, layout: tuple, resolution: int, num_classes: int) -> Counts:
        stem, stages = layout
        total, size = conv_bn(3, stem, 7, 2, resolution)
        size = (size + 2 - 3) // 2 + 1  # max pool 3x3/2, padding 1: not counted
        channels = stem
        for planes, blocks, stride in stages:
            for block in range(blocks):
                s = stride if block == 0 else 1
                part, size, channels = bottleneck(channels, planes, s, size)
                total += part
        return total + pooled_classifier(channels, size, num_classes)


def bottleneck(c_in: int, planes: int, stride: int, size: int) -> tuple[Counts, int, int]:
    """One bottleneck on a (c_in, size, size) map: counts, output side, output channels."""
    out = EXPANSION * planes
    a, s1 = conv_bn(c_in, planes, 1, 1, size)
    b, s2 = conv_bn(planes, planes, 3, stride, s1)
    c, s3 = conv_bn(planes, out, 1, 1, s2)
    total = a + b + c
    if stride != 1 or c_in != out:
        shortcut, _ = conv_bn(c_in, out, 1, stride, size)
        total += shortcut
    return total, s3, out
