"""Budget parsing, the constraint surface and FLOP matching on several budgets and bases."""

import math

import pytest

from scalesearch.errors import BadInput
from scalesearch.net.complexity import counts
from scalesearch.net.scaling import scale_network
from scalesearch.search.matching import match_budget, nominal_match
from scalesearch.search.space import (
    CORNERS,
    Direction,
    direction_from_params,
    grid_directions,
    params_from_direction,
    parse_budget,
)


@pytest.mark.parametrize("text, value", [("2x", 2.0), ("2", 2.0), ("2.5x", 2.5), ("4X", 4.0),
                                         (" 3 x", 3.0), ("1.5", 1.5)])
def test_budget_parsing(text, value):
    assert parse_budget(text) == value


@pytest.mark.parametrize("text", ["abc", "0", "-2x", "1x", "nan", "inf", "", "2xx", "65x"])
def test_bad_budgets_name_the_value(text):
    with pytest.raises(BadInput, match="budget"):
        parse_budget(text)


@pytest.mark.parametrize("depth_share", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("width_fraction", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("budget", [1.5, 2.0, 4.0])
def test_every_sampled_point_lies_on_the_surface(depth_share, width_fraction, budget):
    direction = direction_from_params(depth_share, width_fraction)
    shares = (direction.depth, direction.width, direction.resolution)
    assert min(shares) >= 0 and math.isclose(sum(shares), 1.0)
    alpha, beta, gamma = direction.coefficients(budget)
    assert min(alpha, beta, gamma) >= 1.0
    assert math.isclose(alpha * beta**2 * gamma**2, budget, rel_tol=1e-12)
    back = direction_from_params(**params_from_direction(direction))
    assert back == pytest.approx(direction) or direction.depth == 1.0


def test_corners_spend_the_whole_budget_on_one_dimension():
    assert CORNERS["depth"].coefficients(2.0) == pytest.approx((2.0, 1.0, 1.0))
    assert CORNERS["width"].coefficients(2.0) == pytest.approx((1.0, math.sqrt(2), 1.0))
    assert CORNERS["resolution"].coefficients(2.0) == pytest.approx((1.0, 1.0, math.sqrt(2)))
    assert {k: d.kind for k, d in CORNERS.items()} == {k: k for k in CORNERS}


def test_grid_is_regular_without_corners_and_balanced_first():
    points = grid_directions(0.25)
    assert len(points) == 12  # (n+1)(n+2)/2 = 15 points on the triangle, minus 3 corners
    assert all(p.kind == "compound" for p in points)
    assert all(math.isclose(v * 4, round(v * 4)) for p in points
               for v in (p.depth, p.width, p.resolution))
    largest = [max(p.depth, p.width, p.resolution) for p in points]
    assert largest == sorted(largest) and largest[0] == 0.5
    with pytest.raises(BadInput, match="grid step"):
        grid_directions(0.3)


def _ratio_fn(base, classes=10):
    base_flops = counts(base, classes).flops
    return lambda spec: counts(spec, classes).flops / base_flops


DIRECTIONS = [CORNERS["depth"], CORNERS["width"], CORNERS["resolution"],
              Direction(0.5, 0.25, 0.25)]


@pytest.mark.parametrize("base_resolution", [32, 64])
@pytest.mark.parametrize("budget", [2.0, 4.0])
def test_matching_lands_on_the_budget_or_flags_it(base_resolution, budget):
    base = scale_network(0.5, 0.5, base_resolution)
    ratio = _ratio_fn(base)
    for direction in DIRECTIONS:
        m = match_budget(direction, budget, base, ratio, tolerance=0.03)
        assert min(m.alpha, m.beta, m.gamma) >= 1.0
        assert math.isclose(m.alpha * m.beta**2 * m.gamma**2, budget, rel_tol=0.01)
        assert m.flops_ratio == pytest.approx(ratio(m.spec))
        assert m.within_tolerance == (abs(m.flops_ratio / budget - 1) <= 0.03)
        # Nothing along the direction is closer: nudging phi either way is not better.
        nominal = nominal_match(direction, budget, base, ratio)
        assert abs(math.log(m.flops_ratio / budget)) <= abs(math.log(nominal.flops_ratio / budget))
        if direction.kind == "compound":  # rounding may defeat a corner, not a compound point
            assert m.within_tolerance


def test_matching_on_b0_at_224_px_hits_the_paper_budget():
    base = scale_network(1.0, 1.0, 224)
    ratio = _ratio_fn(base, 1000)
    m = match_budget(Direction(0.4, 0.3, 0.3), 2.0, base, ratio)
    assert m.within_tolerance and abs(m.flops_ratio - 2.0) <= 0.06
    # Unmatched, the nominal point overshoots (ceil of depth, rounding of channels).
    assert nominal_match(Direction(0.4, 0.3, 0.3), 2.0, base, ratio).flops_ratio > m.flops_ratio
