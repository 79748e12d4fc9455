"""The search space: points on the constraint surface alpha * beta^2 * gamma^2 = budget.

A point is a direction: the shares of log(budget) spent on depth, width and resolution
(non-negative, summing to 1). With shares (s_d, s_w, s_r):

    alpha = budget^s_d,  beta = budget^(s_w / 2),  gamma = budget^(s_r / 2)

so alpha, beta, gamma >= 1 and alpha * beta^2 * gamma^2 = budget exactly. Optuna samples two
numbers (u, v) in the unit square; `direction_from_params` maps them onto the triangle of
shares so that uniform (u, v) give directions uniform on the triangle (Osada et al. 2002):

    depth = 1 - sqrt(u),  width = sqrt(u) (1 - v),  resolution = sqrt(u) v

u says how much of the budget leaves depth, v how the rest splits between width and
resolution. A map that is uniform in the square but not on the triangle would over-sample
one corner (taking depth = u over-samples depth-heavy directions by 1 / (1 - depth)), and a
QMC sampler's even spread would be lost on the way. Pure functions, no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from scalesearch.errors import BadInput

KINDS = ("baseline", "depth", "width", "resolution", "compound")
SINGLE_DIMENSIONS = ("depth", "width", "resolution")
MAX_BUDGET = 64.0


def parse_budget(text: str | float) -> float:
    """'2x', '2', '2.5x', '4X' -> the FLOPs multiple over the base; must be above 1."""
    raw = str(text).strip()
    match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*[xX]?", raw)
    if not match:
        raise BadInput(
            f"budget {raw!r} is not a number; give a FLOPs multiple above 1 such as 2x or 2.5x."
        )
    value = float(match.group(1))
    if not 1.0 < value <= MAX_BUDGET:
        raise BadInput(
            f"budget {raw!r} must be above 1x and at most {MAX_BUDGET:g}x (a FLOPs multiple "
            "of the base network), for example 2x."
        )
    return value


@dataclass(frozen=True)
class Direction:
    """Shares of log(budget) spent on depth, width and resolution (sum 1)."""

    depth: float
    width: float
    resolution: float

    def coefficients(self, budget: float) -> tuple[float, float, float]:
        """(alpha, beta, gamma) with alpha * beta^2 * gamma^2 = budget."""
        return budget**self.depth, budget ** (self.width / 2), budget ** (self.resolution / 2)

    @property
    def kind(self) -> str:
        """'depth', 'width' or 'resolution' for a corner, else 'compound'."""
        for name in SINGLE_DIMENSIONS:
            if math.isclose(getattr(self, name), 1.0, abs_tol=1e-9):
                return name
        return "compound"


CORNERS = {
    "depth": Direction(1.0, 0.0, 0.0),
    "width": Direction(0.0, 1.0, 0.0),
    "resolution": Direction(0.0, 0.0, 1.0),
}


PARAMS = ("u", "v")  # Optuna's two parameters, each in [0, 1]


def direction_from_params(u: float, v: float) -> Direction:
    """Optuna's two numbers in [0, 1] -> a point of the share triangle (uniform to uniform)."""
    rest = math.sqrt(min(max(u, 0.0), 1.0))
    v = min(max(v, 0.0), 1.0)
    return Direction(1.0 - rest, rest * (1.0 - v), rest * v)


def params_from_direction(direction: Direction) -> dict[str, float]:
    """The inverse of `direction_from_params` (v is 0.5 at the depth corner)."""
    rest = 1.0 - direction.depth
    v = direction.resolution / rest if rest > 1e-12 else 0.5
    return {"u": rest**2, "v": min(max(v, 0.0), 1.0)}


def largest_share(direction: Direction) -> str:
    """Which dimension takes the largest share: the third of the triangle the point lies in."""
    shares = {name: getattr(direction, name) for name in SINGLE_DIMENSIONS}
    return max(shares, key=shares.get)


def grid_directions(step: float) -> list[Direction]:
    """The regular grid of shares in multiples of `step`, corners excluded, centre first."""
    n = round(1 / step)
    if n < 1 or not math.isclose(n * step, 1.0, rel_tol=1e-6):
        raise BadInput(f"grid step {step!r} must divide 1 evenly, for example 0.25 or 0.2.")
    points = [
        Direction(i / n, j / n, (n - i - j) / n)
        for i in range(n + 1)
        for j in range(n + 1 - i)
    ]
    inner = [p for p in points if p.kind == "compound"]
    # Most balanced first, so that a grid cut short by --trials still spans the middle.
    return sorted(inner, key=lambda p: (max(p.depth, p.width, p.resolution), p.depth, p.width))
