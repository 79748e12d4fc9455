"""Budget parsing, the constraint surface and FLOP matching on several budgets and bases."""

import math

import numpy as np
import pytest
from conftest import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scalesearch.errors import BadInput
from scalesearch.net.complexity import counts
from scalesearch.net.scaling import scale_network
from scalesearch.search.matching import (
    T_MAX,
    match_budget,
    nominal_match,
    nominal_spec,
    scaled_spec,
)
from scalesearch.search.space import (
    CORNERS,
    Direction,
    direction_from_params,
    grid_directions,
    largest_share,
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


@settings(max_examples=examples(200), deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(1.05, 64.0))
def test_every_sampled_point_lies_on_the_surface(u, v, budget):
    direction = direction_from_params(u, v)
    shares = (direction.depth, direction.width, direction.resolution)
    assert min(shares) >= 0 and math.isclose(sum(shares), 1.0)
    alpha, beta, gamma = direction.coefficients(budget)
    assert min(alpha, beta, gamma) >= 1.0
    assert math.isclose(alpha * beta**2 * gamma**2, budget, rel_tol=1e-9)
    back = direction_from_params(**params_from_direction(direction))
    assert (back.depth, back.width, back.resolution) == pytest.approx(shares, abs=1e-9)


def test_uniform_numbers_give_directions_uniform_on_the_triangle():
    # A uniform point of the triangle has depth share with P(depth <= x) = 1 - (1 - x)^2 (the
    # same for width and resolution) and lands in each third (largest share) a third of the
    # time. Checked on 20,000 draws against binomial noise (4.5 sigma bands).
    rng = np.random.default_rng(0)
    draws = [direction_from_params(u, v) for u, v in rng.random((20_000, 2))]
    n = len(draws)
    for name in ("depth", "width", "resolution"):
        values = np.array([getattr(d, name) for d in draws])
        for x in (0.1, 0.3, 0.5, 0.8):
            expected = 1 - (1 - x) ** 2
            assert abs((values <= x).mean() - expected) < 4.5 * math.sqrt(expected / n)
        third = np.mean([largest_share(d) == name for d in draws])
        assert abs(third - 1 / 3) < 4.5 * math.sqrt(2 / 9 / n)


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


def scan(direction, budget, base, ratio, steps=400):
    """The distinct networks along `direction` by a brute-force scan of phi in [0, 4]."""
    alpha, beta, gamma = direction.coefficients(budget)
    found = {}
    for t in np.linspace(0.0, 4.0, steps):
        spec = scaled_spec(alpha, beta, gamma, float(t), base)
        found.setdefault(spec, ratio(spec))
    return found


def check_match(m, direction, budget, base, ratio, tolerance):
    assert min(m.alpha, m.beta, m.gamma) >= 1.0
    assert math.isclose(m.alpha * m.beta**2 * m.gamma**2, budget, rel_tol=1e-9)
    for n in m.networks:
        assert n.ratio == pytest.approx(ratio(n.spec))
    scanned = scan(direction, budget, base, ratio)
    if m.method == "matched":
        assert abs(m.ratio / budget - 1) <= tolerance
    elif m.method == "interpolated":
        low, high = m.networks
        assert low.ratio < budget < high.ratio
        assert all(abs(r / budget - 1) > tolerance for r in (low.ratio, high.ratio))
        # The closest pair: no network of the direction lies strictly between them.
        assert not [s for s, r in scanned.items() if low.ratio < r < high.ratio]
        assert sum(m.weights) == pytest.approx(1.0) and 0 < m.weights[1] < 1
    else:  # off budget: the nearest network, and no scanned network is on the budget
        assert not [r for r in scanned.values() if abs(r / budget - 1) <= tolerance]
    if m.method != "matched" and direction.kind != "compound":
        # A corner that was not matched has no network within the tolerance at all.
        assert not [r for r in scanned.values() if abs(r / budget - 1) <= tolerance]


@pytest.mark.parametrize("base_resolution", [32, 40, 64])
@pytest.mark.parametrize("budget", [2.0, 4.0])
def test_matching_lands_on_the_budget_or_brackets_it(base_resolution, budget):
    base = scale_network(0.5, 0.5, base_resolution)
    ratio = _ratio_fn(base)
    for direction in DIRECTIONS:
        m = match_budget(direction, budget, base, ratio, tolerance=0.03)
        check_match(m, direction, budget, base, ratio, 0.03)
        assert m.method in ("matched", "interpolated")  # these budgets can be reached


@settings(max_examples=examples(40), deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(1.3, 6.0),
       st.sampled_from([(0.25, 0.25, 16), (0.5, 0.5, 40), (0.5, 0.5, 32), (1.0, 1.0, 64)]),
       st.floats(0.01, 0.05))
# Found by this test: two channel roundings 5e-4 apart in t, once taken for one step.
@example(0.34886651400523944, 0.1514769182324647, 3.427734375, (0.5, 0.5, 40), 0.015625)
def test_matching_properties_on_random_directions(u, v, budget, base_args, tolerance):
    base = scale_network(*base_args)
    ratio = _ratio_fn(base)
    direction = direction_from_params(u, v)
    m = match_budget(direction, budget, base, ratio, tolerance)
    check_match(m, direction, budget, base, ratio, tolerance)


@settings(max_examples=examples(40), deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(1.3, 6.0))
def test_flops_never_decrease_along_a_direction(u, v, budget):
    base = scale_network(0.5, 0.5, 40)
    ratio = _ratio_fn(base)
    alpha, beta, gamma = direction_from_params(u, v).coefficients(budget)
    ratios = [ratio(scaled_spec(alpha, beta, gamma, float(t), base))
              for t in np.linspace(0.0, 3.0, 120)]
    assert all(b >= a for a, b in zip(ratios, ratios[1:]))


def test_matching_on_b0_at_224_px_hits_the_paper_budget():
    base = scale_network(1.0, 1.0, 224)
    ratio = _ratio_fn(base, 1000)
    m = match_budget(Direction(0.4, 0.3, 0.3), 2.0, base, ratio)
    assert m.method == "matched" and abs(m.ratio - 2.0) <= 0.06
    # Unmatched, the nominal point overshoots (ceil of depth, rounding of channels).
    assert nominal_match(Direction(0.4, 0.3, 0.3), 2.0, base, ratio).ratio > m.ratio


def test_the_largest_budget_is_allowed():
    assert parse_budget("64x") == 64.0


def test_the_parameters_of_the_corners_and_edges_stay_in_the_unit_square():
    assert params_from_direction(CORNERS["depth"]) == {"u": 0.0, "v": 0.5}
    assert params_from_direction(CORNERS["width"]) == {"u": 1.0, "v": 0.0}
    assert params_from_direction(CORNERS["resolution"]) == {"u": 1.0, "v": 1.0}
    # On the depth-resolution edge, resolution / (1 - depth) rounds to just above 1 (0.2 /
    # (1 - 0.8)); Optuna's v may not leave [0, 1].
    for n in range(2, 13):
        for i in range(n + 1):
            params = params_from_direction(Direction(i / n, 0.0, (n - i) / n))
            assert 0.0 <= params["u"] <= 1.0 and 0.0 <= params["v"] <= 1.0
            assert params["v"] == pytest.approx(0.5 if i == n else 1.0)


def test_a_grid_step_of_one_has_no_inner_points_and_a_typed_third_is_a_third():
    assert grid_directions(1.0) == []  # only the corners, which the plan trains anyway
    with pytest.raises(BadInput, match="grid step"):
        grid_directions(2.0)
    thirds = grid_directions(0.3333333)  # a third as typed on the command line
    assert thirds == grid_directions(1 / 3) and len(thirds) == 7


def test_the_nominal_candidate_is_the_direction_at_phi_1_as_it_is():
    base = scale_network(1.0, 1.0, 224)
    ratio = _ratio_fn(base, 1000)
    direction = Direction(0.4, 0.3, 0.3)
    alpha, beta, gamma = direction.coefficients(2.0)
    m = nominal_match(direction, 2.0, base, ratio)
    assert (m.alpha, m.beta, m.gamma, m.budget, m.tolerance) == (alpha, beta, gamma, 2.0, 0.03)
    (network,) = m.networks
    assert network.phi == 1.0 and m.phi == 1.0
    assert network.spec == scaled_spec(alpha, beta, gamma, 1.0, base)
    assert network.spec == nominal_spec(direction, 2.0, base)
    assert network.ratio == ratio(network.spec) == m.ratio
    # The paper's rounding makes it 2.4x: off the budget at 3%, judged only when allowed 25%.
    assert m.method == "off budget" and not m.within_tolerance
    wide = nominal_match(direction, 2.0, base, ratio, tolerance=0.25)
    assert wide.method == "matched" and wide.within_tolerance and wide.tolerance == 0.25


# Matching against costs made up for the purpose: the real FLOPs count moves in steps that
# depend on the base, these move where the test says.
SMALL = scale_network(0.5, 0.5, 32, dropout=0.3)


def blocks_ratio(spec):
    """A cost that only depth moves, in steps of a block (B0 at half depth has 10)."""
    return spec.blocks / SMALL.blocks


def test_a_corner_between_two_steps_of_cost_is_interpolated_at_the_default_tolerance():
    m = match_budget(CORNERS["depth"], 2.0, SMALL, blocks_ratio)
    # 16 blocks, then 23: 20% below and 15% above the budget, neither within 3%.
    assert m.method == "interpolated" and m.tolerance == 0.03
    assert [n.ratio for n in m.networks] == [1.6, 2.3]
    assert m.weights == pytest.approx(
        (1 - math.log(2 / 1.6) / math.log(2.3 / 1.6), math.log(2 / 1.6) / math.log(2.3 / 1.6)))


def test_a_budget_beyond_reach_leaves_the_largest_network_the_direction_reaches():
    def saturating(spec):  # grows with depth, never reaches 1.5
        return 1.5 * spec.depth_mult / (spec.depth_mult + 0.5)

    m = match_budget(CORNERS["depth"], 2.0, SMALL, saturating)
    assert m.method == "off budget" and not m.within_tolerance
    assert m.phi == T_MAX and len(m.networks) == 1
    assert m.spec == scaled_spec(2.0, 1.0, 1.0, T_MAX, SMALL)


def width_cost(weight):
    """Depth moves the cost in steps of a block, resolution in steps of a pixel, and width
    smoothly, with `weight` of the effect it has on FLOPs."""
    def ratio(spec):
        width = (spec.width_mult / SMALL.width_mult) ** 2
        return (blocks_ratio(spec) * (spec.resolution / SMALL.resolution) ** 2
                * (1 + weight * (width - 1)))
    return ratio


def test_a_compound_candidate_between_steps_gets_its_width_solved_on_its_own():
    direction = Direction(0.5, 0.25, 0.25)
    alpha, beta, gamma = direction.coefficients(2.0)
    m = match_budget(direction, 2.0, SMALL, width_cost(1.0), tolerance=0.003)
    assert m.method == "matched" and abs(m.ratio / 2.0 - 1) <= 0.003
    (tuned,) = m.networks
    along = scaled_spec(alpha, beta, gamma, tuned.phi, SMALL)  # the network at its phi
    assert (tuned.spec.depth_mult, tuned.spec.resolution) == (along.depth_mult, along.resolution)
    assert tuned.spec.width_mult != along.width_mult and tuned.spec.width_mult >= 0.5
    assert tuned.spec.dropout == SMALL.dropout
    assert tuned.ratio == width_cost(1.0)(tuned.spec)


def test_where_width_cannot_close_the_gap_the_neighbours_bracket_the_budget():
    direction = Direction(0.5, 0.25, 0.25)
    alpha, beta, gamma = direction.coefficients(2.0)
    cost = width_cost(0.001)  # four times the width adds 1.5% to the cost of the lower one
    m = match_budget(direction, 2.0, SMALL, cost, tolerance=0.005)
    assert m.method == "interpolated"
    low, high = m.networks
    assert low.phi < high.phi and low.ratio < 2.0 < high.ratio
    for n in m.networks:  # the networks along the direction, as they are
        assert n.spec == scaled_spec(alpha, beta, gamma, n.phi, SMALL)
        assert abs(n.ratio / 2.0 - 1) > 0.005 and n.ratio == cost(n.spec)


def test_a_budget_out_of_range_gets_the_whole_sentence():
    with pytest.raises(BadInput) as caught:
        parse_budget("65x")
    assert str(caught.value) == ("budget '65x' must be above 1x and at most 64x (a FLOPs "
                                 "multiple of the base network), for example 2x.")


@pytest.mark.parametrize("u, v, inside", [(1.5, 0.5, (1.0, 0.5)), (-0.5, 0.3, (0.0, 0.3)),
                                          (0.25, 1.7, (0.25, 1.0)), (0.25, -2.0, (0.25, 0.0))])
def test_numbers_outside_the_unit_square_are_held_to_its_edge(u, v, inside):
    direction = direction_from_params(u, v)
    assert direction == direction_from_params(*inside)
    assert min(direction.depth, direction.width, direction.resolution) >= 0.0


def test_a_network_exactly_at_the_tolerance_is_matched():
    def exactly(spec):  # 2.5x whatever the network: 25% over a 2x budget
        return 2.5

    assert exactly(SMALL) / 2.0 - 1 == 0.25
    assert nominal_match(CORNERS["width"], 2.0, SMALL, exactly, tolerance=0.25).method == "matched"
    assert nominal_match(CORNERS["width"], 2.0, SMALL, exactly, tolerance=0.2499).method == (
        "off budget")
