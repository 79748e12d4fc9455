"""MobileNetV2 (Sandler et al. 2018) and MobileNetV1 (Howard et al. 2017) as families.

MobileNetV2, torchvision's `mobilenet_v2` layout: a 3x3/2 stem conv of 32 channels, seven
stages of inverted residuals (expand t, channels c, blocks n, stride s: 1,16,1,1; 6,24,2,2;
6,32,3,2; 6,64,4,2; 6,96,3,1; 6,160,3,2; 6,320,1,1; a block is [1x1 expand] -> 3x3 depthwise
-> 1x1 linear projection, ReLU6, residual where the shape allows), a 1x1 conv to 1280, pooling,
dropout 0.2 and a linear classifier: 3,504,872 parameters at multipliers 1 (1,000 classes).
Width as torchvision: every channel count ``round_channels(c * w)`` (its `_make_divisible`:
multiples of 8, never more than 10% below), the last conv ``round_channels(1280 * max(1, w))``
(it never shrinks). Depth: ``ceil(n * d)`` blocks a stage (B0's rule; torchvision has none).

MobileNetV1, the paper's layout: a 3x3/2 stem conv of 32 channels, thirteen depthwise-separable
blocks (3x3 depthwise, 1x1 pointwise, batch norm and ReLU after each) grouped into stages by
their output channels (64 x1 stride 1; 128 x2, 256 x2, 512 x6, 1024 x2, each starting with
stride 2), pooling and a linear classifier: 4,231,976 parameters and 568.7 M multiply-adds in
its convolutions and classifier at 224 px (the paper: 4.2 M and 569 M); fvcore's count,
578.9 M, adds 2 flops per element of each eval batch norm (10.1 M, `analytic`) and the
pooling. Width ``round_channels(c * w)``, depth ``ceil(n * d)``, as for V2.
Neither network has a counted op beyond conv, batch norm, pooling and linear.
"""

from __future__ import annotations

from scalesearch.net.analytic import Counts, conv_bn, pooled_classifier
from scalesearch.net.scaling import round_channels, round_repeats

V2_STEM = 32
V2_LAST = 1280
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))  # expand, channels, blocks, stride
V1_STEM = 32
V1_STAGES = ((64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 6, 2), (1024, 2, 2))  # c, n, stride


def separable(c_in: int, c_out: int, stride: int, size: int) -> tuple[Counts, int]:
    """A 3x3 depthwise conv (stride) and a 1x1 conv to `c_out`, each with batch norm."""
    depthwise, size = conv_bn(c_in, c_in, 3, stride, size, depthwise=True)
    pointwise, size = conv_bn(c_in, c_out, 1, 1, size)
    return depthwise + pointwise, size


class MobileNetV2:
    resolution = 224
    # Quarter-depth, half-width at 36 px (0.95x the FLOPs of the default B0 proxy): 32
    # distinct networks at 2x on a grid of 45 directions (README, "Base networks").
    proxy = (0.25, 0.5, 36)
    dropout = 0.2

    def layout(self, depth_mult: float, width_mult: float) -> tuple:
        """(stem, ((expand, channels, blocks, stride), ...), last conv channels)."""
        stages = tuple((t, round_channels(c * width_mult), round_repeats(n, depth_mult), s)
                       for t, c, n, s in V2_STAGES)
        return (round_channels(V2_STEM * width_mult), stages,
                round_channels(V2_LAST * max(1.0, width_mult)))

    def stages(self, layout: tuple) -> list[dict]:
        stem, stages, last = layout
        return ([{"stage": "stem", "out_channels": stem, "repeats": 1}]
                + [{"stage": str(i), "out_channels": c, "repeats": n, "expand": t,
                    "kernel": 3, "stride": s} for i, (t, c, n, s) in enumerate(stages, 1)]
                + [{"stage": "head", "out_channels": last, "repeats": 1}])

    def build(self, layout: tuple, num_classes: int, dropout: float = 0.2):
        from scalesearch.net.mobilenet_model import MobileNetV2Net

        return MobileNetV2Net(layout, num_classes, dropout)

    def count(self, layout: tuple, resolution: int, num_classes: int) -> Counts:
        stem, stages, last = layout
        total, size = conv_bn(3, stem, 3, 2, resolution)
        channels = stem
        for expand, out, blocks, stride in stages:
            for block in range(blocks):
                hidden = int(round(channels * expand))
                if expand != 1:
                    part, size = conv_bn(channels, hidden, 1, 1, size)
                    total += part
                part, size = separable(hidden, out, stride if block == 0 else 1, size)
                total += part
                channels = out
        part, size = conv_bn(channels, last, 1, 1, size)
        return total + part + pooled_classifier(last, size, num_classes)


class MobileNetV1:
    resolution = 224
    # Quarter-depth (1, 1, 1, 2, 1 blocks), half-width at 36 px (0.87x the FLOPs of the
    # default B0 proxy): 29 distinct networks at 2x on a grid of 45 directions (README).
    proxy = (0.25, 0.5, 36)

    def layout(self, depth_mult: float, width_mult: float) -> tuple:
        """(stem, ((channels, blocks, stride), ...))."""
        return (round_channels(V1_STEM * width_mult),
                tuple((round_channels(c * width_mult), round_repeats(n, depth_mult), s)
                      for c, n, s in V1_STAGES))

    def stages(self, layout: tuple) -> list[dict]:
        stem, stages = layout
        return [{"stage": "stem", "out_channels": stem, "repeats": 1}] + [
            {"stage": str(i), "out_channels": c, "repeats": n, "kernel": 3, "stride": s}
            for i, (c, n, s) in enumerate(stages, start=1)]

    def build(self, layout: tuple, num_classes: int):
        from scalesearch.net.mobilenet_model import MobileNetV1Net

        return MobileNetV1Net(layout, num_classes)

    def count(self, layout: tuple, resolution: int, num_classes: int) -> Counts:
        stem, stages = layout
        total, size = conv_bn(3, stem, 3, 2, resolution)
        channels = stem
        for out, blocks, stride in stages:
            for block in range(blocks):
                part, size = separable(channels, out, stride if block == 0 else 1, size)
                total += part
                channels = out
        return total + pooled_classifier(channels, size, num_classes)
