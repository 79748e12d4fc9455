"""Parameters, FLOPs and activations of a NetworkSpec, counted in closed form (no torch).

The totals equal, integer for integer, what fvcore reports for `build_model(spec, classes)` on
one image in eval mode (`scalesearch.net.complexity.measure`); tests/test_analytic.py checks
this against fvcore itself. Conventions (fvcore's):
- conv: (in / groups) * out * kh * kw * Hout * Wout multiply-adds, the bias not counted; a
  conv with kernel k, stride s and padding k // 2 maps H to (H + 2 * (k // 2) - k) // s + 1;
- linear: in * out multiply-adds;
- batch norm (eval, affine): 2 flops per input element;
- adaptive average pooling: 1 flop per input element;
- SiLU, sigmoid, the squeeze-excitation product, residual additions and dropout: 0;
- activations: output elements of every conv and linear layer;
- params: every weight and bias (convs have no bias except the two of squeeze-excitation,
  batch norm has a weight and a bias, the classifier has a bias), as
  `sum(p.numel() for p in model.parameters())`.
Inputs are square, so one side length describes every feature map.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalesearch.net.scaling import NetworkSpec


@dataclass(frozen=True)
class Counts:
    """Raw counts for one network on one image."""

    params: int
    flops: int  # multiply-adds
    activations: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.params + other.params, self.flops + other.flops,
                      self.activations + other.activations)


NOTHING = Counts(0, 0, 0)


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int, size: int,
            depthwise: bool = False) -> tuple[Counts, int]:
    """Conv (no bias, padding k // 2) + batch norm on a (c_in, size, size) map; the counts and
    the output side. The activation that may follow costs nothing."""
    out = (size + 2 * (kernel // 2) - kernel) // stride + 1
    fan_in = 1 if depthwise else c_in  # in channels per group
    pixels = out * out
    conv = Counts(fan_in * c_out * kernel * kernel, fan_in * c_out * kernel * kernel * pixels,
                  c_out * pixels)
    bn = Counts(2 * c_out, 2 * c_out * pixels, 0)
    return conv + bn, out


def squeeze_excitation(channels: int, squeezed: int, size: int) -> Counts:
    """Pool (C, H, W) -> (C,), 1x1 conv with bias to (S,), 1x1 conv with bias back to (C,)."""
    pool = Counts(0, channels * size * size, 0)
    reduce = Counts(channels * squeezed + squeezed, channels * squeezed, squeezed)
    expand = Counts(squeezed * channels + channels, squeezed * channels, channels)
    return pool + reduce + expand


def mbconv(c_in: int, c_out: int, expand: int, kernel: int, stride: int,
           size: int) -> tuple[Counts, int]:
    """One inverted-residual block on a (c_in, size, size) map; the counts and the output side."""
    hidden = c_in * expand
    total = NOTHING
    if expand != 1:
        part, size = conv_bn(c_in, hidden, 1, 1, size)  # (hidden, H, W)
        total += part
    part, size = conv_bn(hidden, hidden, kernel, stride, size, depthwise=True)  # (hidden, H', W')
    total += part
    total += squeeze_excitation(hidden, max(1, int(c_in * 0.25)), size)  # same shape out
    part, size = conv_bn(hidden, c_out, 1, 1, size)  # (c_out, H', W'); + x if residual: free
    return total + part, size


def pooled_classifier(channels: int, size: int, num_classes: int) -> Counts:
    """Global average pooling of a (channels, size, size) map, then the linear classifier (with
    a bias) to `num_classes`."""
    pool = Counts(0, channels * size * size, 0)  # -> (channels,)
    classifier = Counts(channels * num_classes + num_classes, channels * num_classes,
                        num_classes)  # -> (classes,)
    return pool + classifier


def count(spec: NetworkSpec, num_classes: int) -> Counts:
    """Parameters, FLOPs and activations of `build_model(spec, num_classes)` on one image."""
    total, size = conv_bn(3, spec.stem_channels, 3, 2, spec.resolution)  # (stem, R', R')
    channels = spec.stem_channels
    for stage in spec.stages:
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            part, size = mbconv(channels, stage.out_channels, stage.expand, stage.kernel,
                                stride, size)
            total += part
            channels = stage.out_channels
    head, size = conv_bn(channels, spec.head_channels, 1, 1, size)  # (head, S, S)
    return total + head + pooled_classifier(spec.head_channels, size, num_classes)
