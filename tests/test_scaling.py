"""Scaling rules: pure functions, checked against the reference table and invariants."""

import math

import pytest

from scalesearch.errors import BadInput
from scalesearch.net.scaling import (
    B0_HEAD,
    B0_STAGES,
    B0_STEM,
    PRESETS,
    compound_multipliers,
    preset_spec,
    round_channels,
    round_repeats,
    scale_network,
    spec_from_flags,
)

MULTS = [0.25, 0.5, 0.8, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0, 2.6, 3.1]


def test_identity_at_one():
    spec = scale_network(1.0, 1.0, 224)
    assert spec.stem_channels == B0_STEM
    assert spec.head_channels == B0_HEAD
    assert spec.stages == B0_STAGES
    assert spec.blocks == 16


@pytest.mark.parametrize("width", MULTS)
def test_widths_divisible_by_8_and_within_10_percent(width):
    spec = scale_network(1.0, width, 224)
    originals = [B0_STEM, *(s.out_channels for s in B0_STAGES), B0_HEAD]
    scaled = [spec.stem_channels, *(s.out_channels for s in spec.stages), spec.head_channels]
    for original, channels in zip(originals, scaled):
        assert channels % 8 == 0
        assert channels >= 8
        # never more than 10% below the exact product, unless the floor of 8 applies
        assert channels >= 0.9 * original * width or channels == 8


@pytest.mark.parametrize("depth", MULTS)
def test_repeats_ceil_and_never_zero(depth):
    spec = scale_network(depth, 1.0, 224)
    for base, stage in zip(B0_STAGES, spec.stages):
        assert stage.repeats == math.ceil(base.repeats * depth)
        assert stage.repeats >= 1
        if depth >= 1:
            assert stage.repeats >= base.repeats


def test_round_channels_examples():
    # Values from the TF reference rounding: 32*1.1=35.2 -> 32, 16*1.4=22.4 -> 24,
    # 1280*1.1=1408 -> 1408, and the 10% rule: 12 -> 16 (8 would lose a third).
    assert round_channels(35.2) == 32
    assert round_channels(22.4) == 24
    assert round_channels(1408) == 1408
    assert round_channels(12) == 16
    assert round_channels(3) == 8
    assert round_repeats(3, 1.1) == 4
    assert round_repeats(1, 0.3) == 1


def test_b1_and_b2_share_repeats():
    # A known consequence of ceil: d=1.1 and d=1.2 give the same repeats.
    assert [s.repeats for s in preset_spec("b1").stages] == [
        s.repeats for s in preset_spec("b2").stages
    ]


def test_presets_official_resolutions_and_proxy_base():
    for name, preset in PRESETS.items():
        assert preset_spec(name).resolution == preset.resolution
        assert preset_spec(name).dropout == preset.dropout
    assert preset_spec("b1", base_resolution=32).resolution == round(240 / 224 * 32)
    assert preset_spec("B0").resolution == 224


def test_compound_multipliers():
    d, w, r = compound_multipliers(1.2, 1.1, 1.15, 1.0, 224)
    assert (d, w, r) == (1.2, 1.1, round(1.15 * 224))
    d, w, r = compound_multipliers(1.2, 1.1, 1.15, 2.0, 32)
    assert d == pytest.approx(1.44) and w == pytest.approx(1.21) and r == round(1.15**2 * 32)
    # phi below zero shrinks B0 (a cheap proxy)
    d, w, r = compound_multipliers(1.2, 1.1, 1.15, -1.0, 224)
    assert d < 1 and w < 1 and r < 224


def test_shrunken_network_is_valid():
    spec = scale_network(0.3, 0.3, 32)
    assert all(s.repeats >= 1 and s.out_channels >= 8 for s in spec.stages)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"depth_mult": 0}, "depth multiplier"),
        ({"depth_mult": -1.0}, "depth multiplier"),
        ({"width_mult": float("nan")}, "width multiplier"),
        ({"width_mult": float("inf")}, "width multiplier"),
        ({"resolution": 15}, "between 16 and 2048"),
        ({"resolution": 2049}, "between 16 and 2048"),
    ],
)
def test_bad_multipliers_rejected(kwargs, fragment):
    with pytest.raises(BadInput, match=fragment):
        scale_network(**kwargs)


def test_spec_from_flags_modes():
    assert spec_from_flags() == scale_network()
    assert spec_from_flags(preset="b3") == preset_spec("b3")
    assert spec_from_flags(depth_mult=2.0).depth_mult == 2.0
    assert spec_from_flags(alpha=1.2, beta=1.1, gamma=1.15).resolution == 258
    assert spec_from_flags(alpha=1.2, phi=2).depth_mult == pytest.approx(1.44)
    with pytest.raises(BadInput, match="--preset b1 cannot be combined with --depth"):
        spec_from_flags(preset="b1", depth_mult=2.0)
    with pytest.raises(BadInput, match="--width cannot be combined with --gamma"):
        spec_from_flags(width_mult=2.0, gamma=1.1)
    with pytest.raises(BadInput, match="unknown preset 'b8'"):
        spec_from_flags(preset="b8")
