"""Properties of the pure scaling rules (`scalesearch.net.scaling`), checked on many drawn
inputs with hypothesis: channel and repeat rounding, monotone scaling, and the three ways of
naming a network excluding each other."""

import math

import pytest
from conftest import examples
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scalesearch.errors import BadInput
from scalesearch.net.scaling import (
    B0_HEAD,
    B0_STAGES,
    B0_STEM,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    round_channels,
    round_repeats,
    scale_network,
    spec_from_flags,
)

FEW = settings(max_examples=examples(150), deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])

# Mostly small counts, where the 10% rule and the floor of 8 decide; some up to B7's head.
channels = st.one_of(st.floats(min_value=0.01, max_value=64),
                     st.floats(min_value=0.01, max_value=5000))
multipliers = st.floats(min_value=0.05, max_value=8.0, allow_nan=False, allow_infinity=False)
resolutions = st.integers(min_value=MIN_RESOLUTION, max_value=MAX_RESOLUTION)


@FEW
@given(channels)
@example(9.5)  # nearest 8 is 16% low: one step up
@example(11.9)  # nearest 8 is 33% low: 16
@example(12.0)  # a tie: up to 16
@example(3.99)  # below the floor: 8
@example(1280 * 2.0)
def test_round_channels_is_the_nearest_multiple_of_8_never_10_percent_below(c):
    rounded = round_channels(c)
    assert isinstance(rounded, int)
    assert rounded % 8 == 0 and rounded >= 8
    assert rounded >= 0.9 * c  # never loses more than 10%
    multiples = [m for m in range(8, int(c) + 16, 8)]
    nearest = min(multiples, key=lambda m: (abs(m - c), -m))  # ties go up
    if nearest >= 0.9 * c:
        assert rounded == nearest  # the nearest multiple, unless it lost too much ...
    else:
        assert rounded == nearest + 8  # ... then the next one up
    assert rounded - c < 8  # and never a whole step too many


@FEW
@given(channels, channels)
def test_round_channels_is_monotone(a, b):
    low, high = sorted((a, b))
    assert round_channels(low) <= round_channels(high)


@FEW
@given(st.integers(min_value=1, max_value=20), multipliers)
def test_round_repeats_is_the_ceiling_and_at_least_1(repeats, d):
    rounded = round_repeats(repeats, d)
    assert isinstance(rounded, int)
    assert rounded >= 1
    assert rounded == math.ceil(repeats * d)
    assert rounded - 1 < repeats * d <= rounded


def sizes(spec):
    """Every channel count and every stage's repeats of a spec."""
    stage_channels = [s.out_channels for s in spec.stages]
    return [spec.stem_channels, *stage_channels, spec.head_channels], [
        s.repeats for s in spec.stages]


@FEW
@given(multipliers, multipliers, multipliers, resolutions)
def test_scale_network_is_monotone_in_depth_and_width(d1, d2, w, r):
    small, large = sorted((d1, d2))
    a, b = scale_network(small, w, r), scale_network(large, w, r)
    assert all(x <= y for x, y in zip(sizes(a)[1], sizes(b)[1]))
    assert sizes(a)[0] == sizes(b)[0]  # depth leaves the channels alone
    assert a.blocks <= b.blocks

    a, b = scale_network(w, small, r), scale_network(w, large, r)
    assert all(x <= y for x, y in zip(sizes(a)[0], sizes(b)[0]))
    assert sizes(a)[1] == sizes(b)[1]  # width leaves the repeats alone


@FEW
@given(multipliers, multipliers, resolutions)
def test_scale_network_follows_the_b0_table(d, w, r):
    spec = scale_network(d, w, r)
    assert spec.resolution == r and (spec.depth_mult, spec.width_mult) == (d, w)
    assert spec.stem_channels == round_channels(B0_STEM * w)
    assert spec.head_channels == round_channels(B0_HEAD * w)
    for stage, b0 in zip(spec.stages, B0_STAGES, strict=True):
        assert (stage.expand, stage.kernel, stage.stride) == (b0.expand, b0.kernel, b0.stride)
        assert stage.out_channels == round_channels(b0.out_channels * w)
        assert stage.repeats == round_repeats(b0.repeats, d)


@FEW
@given(st.floats(min_value=1.0, max_value=2.0), st.floats(min_value=1.0, max_value=2.0),
       st.floats(min_value=1.0, max_value=2.0), st.floats(min_value=0.0, max_value=2.0),
       st.floats(min_value=0.0, max_value=2.0))
def test_compound_scaling_is_monotone_in_phi(alpha, beta, gamma, phi1, phi2):
    low, high = sorted((phi1, phi2))
    a = spec_from_flags(alpha=alpha, beta=beta, gamma=gamma, phi=low, base_resolution=32)
    b = spec_from_flags(alpha=alpha, beta=beta, gamma=gamma, phi=high, base_resolution=32)
    assert a.resolution <= b.resolution
    assert all(x <= y for x, y in zip(sizes(a)[0], sizes(b)[0]))
    assert all(x <= y for x, y in zip(sizes(a)[1], sizes(b)[1]))


EXPLICIT = {"depth_mult": multipliers, "width_mult": multipliers, "resolution": resolutions}
COMPOUND = {"alpha": st.floats(1.0, 2.0), "beta": st.floats(1.0, 2.0),
            "gamma": st.floats(1.0, 2.0), "phi": st.floats(0.0, 2.0)}


def some_of(strategies):
    """A non-empty dict of some of `strategies`' keys, each with a drawn value."""
    return st.sets(st.sampled_from(sorted(strategies)), min_size=1).flatmap(
        lambda keys: st.fixed_dictionaries({k: strategies[k] for k in keys}))


@FEW
@given(some_of(EXPLICIT), some_of(COMPOUND))
def test_multipliers_and_compound_coefficients_exclude_each_other(explicit, compound):
    with pytest.raises(BadInput, match="cannot be combined"):
        spec_from_flags(**explicit, **compound)
    spec_from_flags(**explicit)  # each way alone is fine
    spec_from_flags(**compound, base_resolution=32)


@FEW
@given(st.sampled_from([f"b{i}" for i in range(8)]),
       some_of({**EXPLICIT, **COMPOUND}))
def test_a_preset_excludes_every_other_flag(preset, others):
    with pytest.raises(BadInput, match=f"--preset {preset} cannot be combined"):
        spec_from_flags(preset=preset, **others)
    assert spec_from_flags(preset=preset) == spec_from_flags(preset=preset.upper())


def test_nothing_given_is_b0():
    assert spec_from_flags() == scale_network(1.0, 1.0, 224)
    assert spec_from_flags(base_resolution=32) == scale_network(1.0, 1.0, 32)
