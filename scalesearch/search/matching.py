"""Bring a candidate to the budget in measured cost, keeping its direction on the surface.

The cost is the study's (`scalesearch.search.costs`): FLOPs by default, or activations, or
measured training time; what follows says FLOPs, and holds for any cost that never decreases
as a network grows.

Rounding (ceil of repeats, channels in multiples of 8, whole pixels, stride arithmetic on small
maps) moves real FLOPs far from the nominal alpha * beta^2 * gamma^2: the paper's own
(1.2, 1.1, 1.15) costs 2.56x B0 at 224 px. So each candidate is scaled by an effective phi t:

    depth_mult = base_depth * alpha^t,  width_mult = base_width * beta^t,
    resolution = round(gamma^t * base_resolution)

and t is solved so that the measured FLOPs ratio lands on the budget. Measured FLOPs never
decrease as t grows, so a bisection finds the two neighbouring networks around the budget.

- One of them within the tolerance: the candidate is that network (`method` "matched").
- Neither (ceil of depth adds a block to every stage at once; one more pixel on a tiny map adds
  a row to every downsampled map): for compound directions the width of each neighbour is
  solved on its own (width moves in the smallest steps, 8 channels), which often lands within
  the tolerance. Otherwise the candidate is the *pair* of neighbours that bracket the budget,
  and its accuracy at the budget is interpolated between them, linearly in log FLOPs
  (`method` "interpolated", `weights`). A network off the budget is never judged as if it
  were on it.
- A budget that cannot be bracketed at all (beyond the largest network the direction reaches)
  leaves the nearest network, flagged "off budget".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scalesearch.net.family import MAX_RESOLUTION, MIN_RESOLUTION, Spec, family_of
from scalesearch.search.space import Direction

CostRatio = Callable[[Spec], float]  # a spec's cost over the base network's
# Bisection stops when the bracket on t is this narrow. Two roundings (say the channels of
# two stages) can change the network 5e-4 apart in t; at 1e-6 they are found as two steps.
T_STEP = 1e-6
T_MAX = 16.0
MATCHED, INTERPOLATED, OFF_BUDGET = "matched", "interpolated", "off budget"


@dataclass(frozen=True)
class Network:
    """One network along a direction."""

    phi: float  # the effective exponent t it was scaled by
    spec: Spec
    ratio: float  # its cost (FLOPs, activations or time) over the base network's


@dataclass(frozen=True)
class Match:
    """A candidate scaled to the budget: one network on it, or two that bracket it."""

    alpha: float  # nominal coefficients: alpha * beta^2 * gamma^2 = budget
    beta: float
    gamma: float
    budget: float
    networks: tuple[Network, ...]  # one, or (below, above) the budget
    tolerance: float

    @property
    def method(self) -> str:
        if len(self.networks) == 2:
            return INTERPOLATED
        return MATCHED if _within(self.networks[0].ratio, self.budget,
                                  self.tolerance) else OFF_BUDGET

    @property
    def weights(self) -> tuple[float, ...]:
        """Weights of `networks` that give the accuracy at the budget (log-FLOPs linear)."""
        if len(self.networks) == 1:
            return (1.0,)
        low, high = (math.log(n.ratio) for n in self.networks)
        upper = (math.log(self.budget) - low) / (high - low)
        return (1.0 - upper, upper)

    @property
    def nearest(self) -> Network:
        """The network closest to the budget in log FLOPs."""
        return min(self.networks, key=lambda n: _miss(n.ratio, self.budget))

    @property
    def within_tolerance(self) -> bool:
        """Whether the candidate can be judged at the budget (matched or interpolated)."""
        return self.method != OFF_BUDGET

    # The nearest network's fields, for callers that need one network.
    @property
    def spec(self) -> Spec:
        return self.nearest.spec

    @property
    def phi(self) -> float:
        return self.nearest.phi

    @property
    def ratio(self) -> float:
        return self.nearest.ratio


def scaled_spec(
    alpha: float, beta: float, gamma: float, t: float, base: Spec
) -> Spec:
    """`base` scaled by alpha^t (depth), beta^t (width) and gamma^t (resolution, rounded)."""
    resolution = min(MAX_RESOLUTION, max(MIN_RESOLUTION, round(gamma**t * base.resolution)))
    return family_of(base).scale(base.depth_mult * alpha**t, base.width_mult * beta**t,
                                 resolution, base.dropout)


def nominal_spec(direction: Direction, budget: float, base: Spec) -> Spec:
    """The candidate at phi = 1, without matching."""
    alpha, beta, gamma = direction.coefficients(budget)
    return scaled_spec(alpha, beta, gamma, 1.0, base)


def match_budget(
    direction: Direction,
    budget: float,
    base: Spec,
    cost_ratio: CostRatio,
    tolerance: float = 0.03,
) -> Match:
    """The network along `direction` from `base` whose measured cost ratio (to `base`) is
    within `tolerance` of `budget`, or the two that bracket it (see the module docstring)."""
    alpha, beta, gamma = direction.coefficients(budget)

    def at(t: float) -> Network:
        spec = scaled_spec(alpha, beta, gamma, t, base)
        return Network(t, spec, cost_ratio(spec))

    def done(networks) -> Match:
        return Match(alpha, beta, gamma, budget, tuple(networks), tolerance)

    low, high = at(0.0), at(1.0)
    while high.ratio < budget and high.phi < T_MAX:  # widen until the bracket holds it
        low, high = high, at(high.phi * 2)
    while high.phi - low.phi > T_STEP and high.ratio >= budget:
        mid = at((low.phi + high.phi) / 2)
        if mid.ratio < budget:
            low = mid
        else:
            high = mid
    nearest = min((low, high), key=lambda n: _miss(n.ratio, budget))
    if _within(nearest.ratio, budget, tolerance):
        return done([nearest])
    if direction.kind == "compound":
        # Keep each neighbour's depth and resolution and solve its width (never below the
        # base's, so beta stays >= 1).
        for neighbour in (low, high):
            tuned = _solve_width(neighbour, budget, base.width_mult, cost_ratio)
            if _within(tuned.ratio, budget, tolerance):
                return done([tuned])
    if low.ratio < budget < high.ratio:
        return done([low, high])
    return done([nearest])


def _miss(ratio: float, budget: float) -> float:
    return abs(math.log(ratio / budget))


def _within(ratio: float, budget: float, tolerance: float) -> bool:
    return abs(ratio / budget - 1) <= tolerance


def _solve_width(network: Network, budget: float, least: float,
                 cost_ratio: CostRatio) -> Network:
    """`network` with the width multiplier >= `least` whose cost ratio is closest to budget."""
    spec = network.spec

    def at(width: float) -> Network:
        tuned = family_of(spec).scale(spec.depth_mult, width, spec.resolution, spec.dropout)
        return Network(network.phi, tuned, cost_ratio(tuned))

    lo, hi = least, max(least, spec.width_mult) * 4
    low, high = at(lo), at(hi)
    if low.ratio >= budget or high.ratio <= budget:
        return min(low, high, key=lambda n: _miss(n.ratio, budget))
    while hi / lo > 1.002:  # FLOPs never decrease with width
        mid = math.sqrt(lo * hi)
        pair = at(mid)
        if pair.ratio < budget:
            lo, low = mid, pair
        else:
            hi, high = mid, pair
    return min(low, high, key=lambda n: _miss(n.ratio, budget))


def nominal_match(
    direction: Direction, budget: float, base: Spec, cost_ratio: CostRatio,
    tolerance: float = 0.03,
) -> Match:
    """The candidate at phi = 1 as it is (matching off), with its measured ratio checked."""
    alpha, beta, gamma = direction.coefficients(budget)
    spec = scaled_spec(alpha, beta, gamma, 1.0, base)
    return Match(alpha, beta, gamma, budget, (Network(1.0, spec, cost_ratio(spec)),),
                 tolerance)
