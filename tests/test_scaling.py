"""Scaling rules: pure functions, checked against the reference table and invariants."""

import math
from dataclasses import replace

import pytest

from scalesearch.errors import BadInput
from scalesearch.net.family import ScaleFlags
from scalesearch.net.scaling import (
    B0_HEAD,
    B0_STAGES,
    B0_STEM,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    PRESETS,
    check_classes,
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


def test_scale_flags_name_the_network_their_fields_describe():
    flags = ScaleFlags(depth_mult=2.0, width_mult=1.5, resolution=100)
    assert flags.spec() == spec_from_flags(depth_mult=2.0, width_mult=1.5, resolution=100)
    flags = ScaleFlags(alpha=1.2, beta=1.1, gamma=1.15, phi=2.0)
    assert flags.spec(32) == spec_from_flags(alpha=1.2, beta=1.1, gamma=1.15, phi=2.0,
                                             base_resolution=32)
    assert ScaleFlags(preset="b3").spec(64) == preset_spec("b3", 64)
    assert ScaleFlags().spec() == scale_network() and ScaleFlags().spec(32).resolution == 32


def test_scale_flags_fail_early_only_where_no_base_could_serve_them():
    # Exact where the base is known.
    ScaleFlags(gamma=0.5, phi=3.0).check(2048)
    with pytest.raises(BadInput, match="got 2[.]"):
        ScaleFlags(gamma=0.5, phi=3.0).check(16)
    # Without a base: fine if some base works (the largest for a factor below 1, the smallest
    # for one above), an error (the one at the smallest base) if none does.
    ScaleFlags(gamma=0.5, phi=3.0).check(None)
    ScaleFlags(gamma=1.15, phi=30.0).check(None)
    ScaleFlags(preset="b7").check(None)
    with pytest.raises(BadInput, match="got 160000[.]"):
        ScaleFlags(gamma=100.0, phi=2.0).check(None)
    with pytest.raises(BadInput, match="got 3000[.]"):
        ScaleFlags(resolution=3000).check(None)


def test_a_network_key_names_its_structure_and_classes_but_not_its_multipliers():
    spec = scale_network(1.1, 1.2, 64)
    assert spec.key(10) == replace(spec, depth_mult=9.0, width_mult=9.0).key(10)
    assert spec.key(10) != spec.key(100)
    changed = [replace(spec, stem_channels=8), replace(spec, head_channels=8),
               replace(spec, resolution=65), replace(spec, stages=spec.stages[:-1])]
    for field in ("expand", "kernel", "stride", "out_channels", "repeats"):
        stage = spec.stages[3]
        moved = replace(stage, **{field: getattr(stage, field) + 1})
        changed.append(replace(spec, stages=(*spec.stages[:3], moved, *spec.stages[4:])))
    keys = {spec.key(10), *(c.key(10) for c in changed)}
    assert len(keys) == len(changed) + 1


@pytest.mark.parametrize("bad", ["2", None, float("nan"), -0.5, 0.0])
def test_a_multiplier_that_is_not_a_positive_number_is_bad_input(bad):
    with pytest.raises(BadInput, match="depth multiplier"):
        scale_network(depth_mult=bad)
    with pytest.raises(BadInput, match="alpha"):
        compound_multipliers(bad, 1.1, 1.1, 1.0)


def test_resolutions_may_be_whole_floats_and_phi_must_be_a_finite_number():
    assert scale_network(resolution=64.0).resolution == 64
    assert isinstance(scale_network(resolution=64.0).resolution, int)
    assert scale_network(resolution=MIN_RESOLUTION).resolution == MIN_RESOLUTION
    assert scale_network(resolution=MAX_RESOLUTION).resolution == MAX_RESOLUTION
    for bad in (64.5, float("nan"), float("inf")):
        with pytest.raises(BadInput, match="whole number of pixels"):
            scale_network(resolution=bad)
    for bad in (float("nan"), float("inf"), "1"):
        with pytest.raises(BadInput, match="phi"):
            compound_multipliers(1.2, 1.1, 1.15, bad)
    with pytest.raises(BadInput, match="base resolution"):
        compound_multipliers(1.2, 1.1, 1.15, 1.0, 8)
    with pytest.raises(BadInput, match="classes"):
        check_classes(1)
    assert check_classes(2) == 2


FLAGS = {"--depth": {"depth_mult": 1.2}, "--width": {"width_mult": 1.1},
         "--resolution": {"resolution": 100}, "--alpha": {"alpha": 1.2}, "--beta": {"beta": 1.1},
         "--gamma": {"gamma": 1.15}, "--phi": {"phi": 2.0}}


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_a_flag_that_conflicts_with_a_preset_is_named(flag):
    with pytest.raises(BadInput, match=f"--preset b2 cannot be combined with {flag};"):
        spec_from_flags(preset="b2", **FLAGS[flag])


def test_every_conflicting_flag_is_named():
    with pytest.raises(BadInput, match="--preset b2 cannot be combined with --depth, --width, "
                                       "--alpha;"):
        spec_from_flags(preset="b2", depth_mult=1.2, width_mult=1.1, alpha=1.2)
    with pytest.raises(BadInput, match="--depth, --resolution cannot be combined with "
                                       "--beta, --phi;"):
        spec_from_flags(depth_mult=1.2, resolution=100, beta=1.1, phi=2.0)


def test_each_flag_sets_only_its_own_dimension():
    assert spec_from_flags(width_mult=1.5) == scale_network(1.0, 1.5, 224)
    assert spec_from_flags(resolution=100) == scale_network(1.0, 1.0, 100)
    assert spec_from_flags(depth_mult=1.5, base_resolution=32) == scale_network(1.5, 1.0, 32)
    # Compound coefficients left out stay at 1 (phi too).
    assert spec_from_flags(alpha=1.2, phi=2.0) == scale_network(1.2**2, 1.0, 224)
    assert spec_from_flags(beta=1.1) == scale_network(1.0, 1.1, 224)
    assert spec_from_flags(gamma=1.15, base_resolution=32) == scale_network(1.0, 1.0, 37)


def test_presets_and_coefficients_scale_the_base_resolution_they_are_given():
    assert spec_from_flags(preset="b1", base_resolution=32) == preset_spec("b1", 32)
    assert spec_from_flags(preset="b1", base_resolution=32).resolution == round(240 / 224 * 32)
    assert spec_from_flags(gamma=1.15, phi=2.0, base_resolution=64).resolution == round(
        1.15**2 * 64)
    for bad_base in (lambda: spec_from_flags(base_resolution=8),
                     lambda: preset_spec("b0", base_resolution=8),
                     lambda: compound_multipliers(1.2, 1.1, 1.15, 1.0, 4000)):
        with pytest.raises(BadInput, match="^base resolution must be between"):
            bad_base()


@pytest.mark.parametrize("name", ["alpha", "beta", "gamma"])
def test_a_bad_coefficient_is_named(name):
    coefficients = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15, name: -1.0}
    with pytest.raises(BadInput, match=f"^{name} must be a finite number above 0"):
        compound_multipliers(coefficients["alpha"], coefficients["beta"],
                             coefficients["gamma"], 1.0)


def test_channels_that_lose_exactly_a_tenth_keep_the_lower_multiple():
    # The reference rule bumps the channels up only when rounding lost more than 10%:
    # 80/9 rounds to 8, which is 0.9 * 80/9 exactly.
    assert 0.9 * (80 / 9) == 8.0 and round_channels(80 / 9) == 8
    assert round_channels(80 / 9 + 1e-9) == 16  # a hair more is a loss above 10%


def test_the_default_dropout_is_b0s():
    assert scale_network().dropout == 0.2 and scale_network(0.5, 0.5, 32).dropout == 0.2


@pytest.mark.parametrize("call, sentence", [
    (lambda: scale_network(depth_mult=0.0),
     "depth multiplier must be a finite number above 0, got 0.0."),
    (lambda: scale_network(width_mult=-1.0),
     "width multiplier must be a finite number above 0, got -1.0."),
    (lambda: scale_network(resolution=8),
     "resolution must be between 16 and 2048 pixels, got 8."),
    (lambda: preset_spec("b9"),
     "unknown preset 'b9'; choose one of b0, b1, b2, b3, b4, b5, b6, b7."),
    (lambda: spec_from_flags(preset="b1", width_mult=1.1),
     "--preset b1 cannot be combined with --width; use either a preset or explicit "
     "multipliers."),
    (lambda: spec_from_flags(depth_mult=1.1, alpha=1.2),
     "--depth cannot be combined with --alpha; give either multipliers or compound "
     "coefficients."),
])
def test_bad_scales_get_one_whole_sentence(call, sentence):
    with pytest.raises(BadInput) as caught:
        call()
    assert str(caught.value) == sentence
