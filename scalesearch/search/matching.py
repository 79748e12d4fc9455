"""Bring a candidate to the budget in measured FLOPs, keeping its direction on the surface.

Rounding (ceil of repeats, channels in multiples of 8, whole pixels, stride arithmetic on small
maps) moves real FLOPs far from the nominal alpha * beta^2 * gamma^2: the paper's own
(1.2, 1.1, 1.15) costs 2.56x B0 at 224 px. So each candidate is scaled by an effective phi t:

    depth_mult = base_depth * alpha^t,  width_mult = base_width * beta^t,
    resolution = round(gamma^t * base_resolution)

and t is solved so that the measured FLOPs ratio lands as close to the budget as the rounding
allows. Measured FLOPs never decrease as t grows, so a bisection finds the two neighbouring
networks around the budget and the closer one wins. When the budget sits in a gap between them
(ceil of depth adds a block to every stage at once; one more pixel on a tiny map adds a row to
every downsampled map), the width of each neighbour is solved on its own. If even that is off
by more than the tolerance, the match is flagged."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scalesearch.net.scaling import MAX_RESOLUTION, MIN_RESOLUTION, NetworkSpec, scale_network
from scalesearch.search.space import Direction

FlopsRatio = Callable[[NetworkSpec], float]  # measured FLOPs of a spec over the base's
T_STEP = 1e-3  # bisection stops when the bracket on t is this narrow
T_MAX = 16.0


@dataclass(frozen=True)
class Match:
    """A candidate scaled to the budget."""

    alpha: float  # nominal coefficients: alpha * beta^2 * gamma^2 = budget
    beta: float
    gamma: float
    phi: float  # the effective exponent t
    spec: NetworkSpec
    flops_ratio: float  # measured
    within_tolerance: bool

    @property
    def depth_mult(self) -> float:
        return self.spec.depth_mult

    @property
    def width_mult(self) -> float:
        return self.spec.width_mult

    @property
    def resolution(self) -> int:
        return self.spec.resolution


def scaled_spec(
    alpha: float, beta: float, gamma: float, t: float, base: NetworkSpec
) -> NetworkSpec:
    """`base` scaled by alpha^t (depth), beta^t (width) and gamma^t (resolution, rounded)."""
    resolution = min(MAX_RESOLUTION, max(MIN_RESOLUTION, round(gamma**t * base.resolution)))
    return scale_network(base.depth_mult * alpha**t, base.width_mult * beta**t, resolution,
                         base.dropout)


def nominal_spec(direction: Direction, budget: float, base: NetworkSpec) -> NetworkSpec:
    """The candidate at phi = 1, without matching."""
    alpha, beta, gamma = direction.coefficients(budget)
    return scaled_spec(alpha, beta, gamma, 1.0, base)


def match_budget(
    direction: Direction,
    budget: float,
    base: NetworkSpec,
    flops_ratio: FlopsRatio,
    tolerance: float = 0.03,
) -> Match:
    """The network along `direction` from `base` whose measured FLOPs ratio (to `base`) is
    closest to `budget`; flagged when even that one is off by more than `tolerance`."""
    alpha, beta, gamma = direction.coefficients(budget)

    def at(t: float) -> tuple[NetworkSpec, float]:
        spec = scaled_spec(alpha, beta, gamma, t, base)
        return spec, flops_ratio(spec)

    lo, hi = 0.0, 1.0
    hi_spec, hi_ratio = at(hi)
    while hi_ratio < budget and hi < T_MAX:  # widen until the bracket holds the budget
        lo, hi = hi, hi * 2
        hi_spec, hi_ratio = at(hi)
    lo_spec, lo_ratio = at(lo)
    while hi - lo > T_STEP and hi_ratio >= budget:
        mid = (lo + hi) / 2
        mid_spec, mid_ratio = at(mid)
        if mid_ratio < budget:
            lo, lo_spec, lo_ratio = mid, mid_spec, mid_ratio
        else:
            hi, hi_spec, hi_ratio = mid, mid_spec, mid_ratio
    # Of the two neighbours, the one closer in log FLOPs.
    picks = [(lo, lo_spec, lo_ratio), (hi, hi_spec, hi_ratio)]
    t, spec, ratio = min(picks, key=lambda p: _miss(p[2], budget))
    if _miss(ratio, budget) > math.log1p(tolerance) and direction.kind == "compound":
        # Ceil of depth adds a block to every stage at once, and on tiny maps one more pixel
        # adds a row to every downsampled map, so along the direction the budget may sit in a
        # gap. Width moves in the smallest steps (8 channels): keep each neighbour's depth and
        # resolution and solve its width (never below the base's, so beta stays >= 1).
        for t_n, spec_n, _ in picks:
            tuned, tuned_ratio = _solve_width(spec_n, budget, base.width_mult, flops_ratio)
            if _miss(tuned_ratio, budget) < _miss(ratio, budget):
                t, spec, ratio = t_n, tuned, tuned_ratio
    return Match(alpha, beta, gamma, t, spec, ratio, abs(ratio / budget - 1) <= tolerance)


def _miss(ratio: float, budget: float) -> float:
    return abs(math.log(ratio / budget))


def _solve_width(
    spec: NetworkSpec, budget: float, least: float, flops_ratio: FlopsRatio
) -> tuple[NetworkSpec, float]:
    """`spec` with the width multiplier >= `least` whose FLOPs ratio is closest to budget."""
    def at(width: float) -> tuple[NetworkSpec, float]:
        tuned = scale_network(spec.depth_mult, width, spec.resolution, spec.dropout)
        return tuned, flops_ratio(tuned)

    lo, hi = least, max(least, spec.width_mult) * 4
    lo_pair, hi_pair = at(lo), at(hi)
    if lo_pair[1] >= budget or hi_pair[1] <= budget:
        return min(lo_pair, hi_pair, key=lambda p: _miss(p[1], budget))
    while hi / lo > 1.002:  # FLOPs never decrease with width
        mid = math.sqrt(lo * hi)
        pair = at(mid)
        if pair[1] < budget:
            lo, lo_pair = mid, pair
        else:
            hi, hi_pair = mid, pair
    return min(lo_pair, hi_pair, key=lambda p: _miss(p[1], budget))


def nominal_match(
    direction: Direction, budget: float, base: NetworkSpec, flops_ratio: FlopsRatio,
    tolerance: float = 0.03,
) -> Match:
    """The candidate at phi = 1 as it is (matching off), with its measured ratio checked."""
    alpha, beta, gamma = direction.coefficients(budget)
    spec = scaled_spec(alpha, beta, gamma, 1.0, base)
    ratio = flops_ratio(spec)
    return Match(alpha, beta, gamma, 1.0, spec, ratio, abs(ratio / budget - 1) <= tolerance)
