"""Compound scaling of EfficientNet-B0: pure functions from multipliers to a network spec.

Conventions (Tan & Le 2019; the TF reference builder, torchvision and timm agree):
- width: every channel count, stem and head included, becomes ``round_channels(c * w)``,
  a multiple of 8 that is never more than 10% below ``c * w``;
- depth: each stage's repeats become ``ceil(repeats * d)``;
- resolution: an integer number of pixels, ``round(gamma**phi * base_resolution)`` when it
  comes from compound coefficients.
Nothing here imports torch, so the CLI can validate input and print help quickly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalesearch.errors import BadInput

MIN_RESOLUTION = 16
MAX_RESOLUTION = 2048
STOCHASTIC_DEPTH = 0.2  # the final block's drop rate approaches this (B0: 0.0 ... 0.1875)


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks; only the first block has the stage's stride."""

    expand: int  # expansion ratio of the inverted bottleneck
    kernel: int  # depthwise kernel size
    stride: int  # stride of the stage's first block
    out_channels: int
    repeats: int


@dataclass(frozen=True)
class NetworkSpec:
    """Everything needed to build one EfficientNet; the model builder reads only this."""

    stem_channels: int
    stages: tuple[StageSpec, ...]
    head_channels: int
    resolution: int  # input side in pixels (square inputs)
    dropout: float  # head dropout before the classifier
    stochastic_depth: float = STOCHASTIC_DEPTH
    depth_mult: float = 1.0  # the multipliers this spec was made from, kept for reports
    width_mult: float = 1.0

    family = "efficientnet-b0"  # the family that builds and counts it (net.family)

    @property
    def blocks(self) -> int:
        return sum(stage.repeats for stage in self.stages)

    def key(self, num_classes: int) -> str:
        """A string that identifies the built network (for caches); multipliers excluded."""
        stages = ";".join(
            f"{s.expand},{s.kernel},{s.stride},{s.out_channels},{s.repeats}" for s in self.stages
        )
        return f"{self.stem_channels}|{stages}|{self.head_channels}|{self.resolution}|{num_classes}"


# The B0 table (paper table 1): expand, kernel, stride, out channels, repeats.
B0_STEM = 32
B0_HEAD = 1280
B0_RESOLUTION = 224
B0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 16, 1),
    StageSpec(6, 3, 2, 24, 2),
    StageSpec(6, 5, 2, 40, 2),
    StageSpec(6, 3, 2, 80, 3),
    StageSpec(6, 5, 1, 112, 3),
    StageSpec(6, 5, 2, 192, 4),
    StageSpec(6, 3, 1, 320, 1),
)


@dataclass(frozen=True)
class Preset:
    """An official family member: multipliers, resolution and head dropout."""

    width_mult: float
    depth_mult: float
    resolution: int
    dropout: float


PRESETS: dict[str, Preset] = {
    "b0": Preset(1.0, 1.0, 224, 0.2),
    "b1": Preset(1.0, 1.1, 240, 0.2),
    "b2": Preset(1.1, 1.2, 260, 0.3),
    "b3": Preset(1.2, 1.4, 300, 0.3),
    "b4": Preset(1.4, 1.8, 380, 0.4),
    "b5": Preset(1.6, 2.2, 456, 0.4),
    "b6": Preset(1.8, 2.6, 528, 0.5),
    "b7": Preset(2.0, 3.1, 600, 0.5),
}


def round_channels(channels: float, divisor: int = 8) -> int:
    """Nearest multiple of ``divisor`` (at least ``divisor``), bumped up if it lost over 10%."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def round_repeats(repeats: int, depth_mult: float) -> int:
    """Repeats of a stage after depth scaling: always rounded up, so never zero."""
    return int(math.ceil(repeats * depth_mult))


def check_multiplier(name: str, value: float) -> float:
    """A multiplier must be a finite number above zero."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise BadInput(f"{name} must be a finite number above 0, got {value!r}.")
    return float(value)


def check_resolution(resolution: int, name: str = "resolution") -> int:
    if isinstance(resolution, float):
        if not math.isfinite(resolution) or resolution != int(resolution):
            raise BadInput(f"{name} must be a whole number of pixels, got {resolution!r}.")
        resolution = int(resolution)
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise BadInput(
            f"{name} must be between {MIN_RESOLUTION} and {MAX_RESOLUTION} pixels, "
            f"got {resolution}."
        )
    return int(resolution)


def check_classes(num_classes: int) -> int:
    if num_classes < 2:
        raise BadInput(f"classes must be at least 2, got {num_classes}.")
    return num_classes


def scale_network(
    depth_mult: float = 1.0,
    width_mult: float = 1.0,
    resolution: int = B0_RESOLUTION,
    dropout: float = 0.2,
) -> NetworkSpec:
    """B0 scaled by depth and width multipliers, at the given input resolution.

    Multipliers below 1 are allowed (a shrunken B0 for cheap proxies); every stage keeps at
    least one block and at least 8 channels.
    """
    depth_mult = check_multiplier("depth multiplier", depth_mult)
    width_mult = check_multiplier("width multiplier", width_mult)
    resolution = check_resolution(resolution)
    stages = tuple(
        StageSpec(
            s.expand,
            s.kernel,
            s.stride,
            round_channels(s.out_channels * width_mult),
            round_repeats(s.repeats, depth_mult),
        )
        for s in B0_STAGES
    )
    return NetworkSpec(
        stem_channels=round_channels(B0_STEM * width_mult),
        stages=stages,
        head_channels=round_channels(B0_HEAD * width_mult),
        resolution=resolution,
        dropout=dropout,
        depth_mult=depth_mult,
        width_mult=width_mult,
    )


def compound_multipliers(
    alpha: float, beta: float, gamma: float, phi: float, base_resolution: int = B0_RESOLUTION
) -> tuple[float, float, int]:
    """(depth_mult, width_mult, resolution) = (alpha^phi, beta^phi, round(gamma^phi * base))."""
    alpha = check_multiplier("alpha", alpha)
    beta = check_multiplier("beta", beta)
    gamma = check_multiplier("gamma", gamma)
    if not isinstance(phi, (int, float)) or not math.isfinite(phi):
        raise BadInput(f"phi must be a finite number, got {phi!r}.")
    base_resolution = check_resolution(base_resolution, "base resolution")
    resolution = check_resolution(round(gamma**phi * base_resolution))
    return alpha**phi, beta**phi, resolution


def preset_spec(name: str, base_resolution: int = B0_RESOLUTION) -> NetworkSpec:
    """An official preset; its resolution is scaled relative to ``base_resolution``.

    With the default base of 224 this is the official resolution table; with a proxy base
    (say 32 px) b1 runs at round(240 / 224 * 32) px.
    """
    key = name.lower()
    if key not in PRESETS:
        raise BadInput(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    preset = PRESETS[key]
    base_resolution = check_resolution(base_resolution, "base resolution")
    resolution = check_resolution(round(preset.resolution * base_resolution / B0_RESOLUTION))
    return scale_network(preset.depth_mult, preset.width_mult, resolution, preset.dropout)


def spec_from_flags(
    preset: str | None = None,
    depth_mult: float | None = None,
    width_mult: float | None = None,
    resolution: int | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    gamma: float | None = None,
    phi: float | None = None,
    base_resolution: int = B0_RESOLUTION,
    scale=None,
) -> NetworkSpec:
    """The network that one of the three ways of naming a scale describes.

    `scale` makes a spec from (depth, width, resolution): B0's `scale_network` unless another
    family's is given (presets are B0's alone).

    Exactly one way may be used: a preset (b0..b7, resolution relative to the base), explicit
    multipliers (depth/width/resolution; unset ones stay at B0's), or compound coefficients
    (alpha/beta/gamma, unset ones 1.0, with phi, default 1). Nothing given means the base.
    """
    base_resolution = check_resolution(base_resolution, "base resolution")
    explicit = {"--depth": depth_mult, "--width": width_mult, "--resolution": resolution}
    compound = {"--alpha": alpha, "--beta": beta, "--gamma": gamma, "--phi": phi}
    used_explicit = [flag for flag, value in explicit.items() if value is not None]
    used_compound = [flag for flag, value in compound.items() if value is not None]
    if preset is not None and (used_explicit or used_compound):
        others = ", ".join(used_explicit + used_compound)
        raise BadInput(
            f"--preset {preset} cannot be combined with {others}; "
            "use either a preset or explicit multipliers."
        )
    if used_explicit and used_compound:
        raise BadInput(
            f"{', '.join(used_explicit)} cannot be combined with {', '.join(used_compound)}; "
            "give either multipliers or compound coefficients."
        )
    if preset is not None:
        return preset_spec(preset, base_resolution)
    if used_compound:
        depth, width, res = compound_multipliers(
            1.0 if alpha is None else alpha,
            1.0 if beta is None else beta,
            1.0 if gamma is None else gamma,
            1.0 if phi is None else phi,
            base_resolution,
        )
        return (scale or scale_network)(depth, width, res)
    return (scale or scale_network)(
        1.0 if depth_mult is None else depth_mult,
        1.0 if width_mult is None else width_mult,
        base_resolution if resolution is None else resolution,
    )
