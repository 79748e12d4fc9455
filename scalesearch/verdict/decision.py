"""The verdict: does compound scaling beat the best single dimension at equal cost?

Two strategies are compared, both judged at the same budget (each matched within the tolerance
or interpolated between two networks that bracket it): the compound network the search chose,
and the single dimension the search found best. Both choices were made on the search's own
runs (validation split, search seeds); the comparison judges fresh runs (new seeds, the test
split), so neither side profits from the luck that selected it, and choosing the single
dimension beforehand keeps the rule symmetric: under the null both sides win equally rarely.

The difference is tested two-sided at 5% with the t distribution (`scalesearch.verdict.stats`:
seed noise pooled over the compared networks, paired image noise, Welch-Satterthwaite degrees of
freedom). Answers: ``compound``, the single dimension's name, ``tie`` (with the smallest
difference the test would have found with 80% power), or ``undecided`` (something is missing,
or fewer than `MIN_SEED_DF` degrees of freedom of seed noise: never a win).
"""

from __future__ import annotations

import numpy as np

from scalesearch.verdict import stats
from scalesearch.verdict.results import Judged, cost_ratio

MIN_SEED_DF = 2  # seed noise measured with fewer degrees of freedom decides nothing


def _name(judged: Judged) -> str:
    kind = judged.strategy.kind
    return "compound" if kind == "compound" else f"{kind} alone"


def _how(judged: Judged) -> str:
    """Where the strategy's networks lie, as multiples of the base network's cost (the cost
    the budget is in: FLOPs, activations or training time)."""
    rows = judged.strategy.rows
    if len(rows) == 2:
        return (f"interpolated between {cost_ratio(rows[0]):.2f}x and "
                f"{cost_ratio(rows[1]):.2f}x")
    return f"{cost_ratio(rows[0]):.2f}x"


def decide(compound: Judged | None, single: Judged | None, trained: dict[str, np.ndarray],
           noise: stats.SeedNoise, more_seeds: str = "--seeds") -> dict:
    """The verdict entry (see the module docstring); `more_seeds` is the flag a user adds
    seeds with."""
    if compound is None or single is None:
        missing = "compound network" if compound is None else "single-dimension network"
        return {"answer": "undecided", "text": f"No verdict: no finished {missing} at the "
                f"budget yet."}
    result = {"single_dimension": single.strategy.kind,
              "seed_degrees_of_freedom": noise.degrees_of_freedom, "images": noise.images}
    if noise.degrees_of_freedom < MIN_SEED_DF:
        return {**result, "answer": "undecided",
                "text": f"No verdict: seed noise was measured with "
                        f"{noise.degrees_of_freedom} degree(s) of freedom and needs at least "
                        f"{MIN_SEED_DF}: train each network at least twice ({more_seeds} 2 or "
                        "more)."}
    diff = stats.difference(compound.strategy.terms, single.strategy.terms, trained, noise)
    result.update(difference=diff.value, standard_error=diff.standard_error,
                  degrees_of_freedom=diff.degrees_of_freedom, p_value=diff.p_value,
                  detectable_difference=diff.detectable)
    head = (f"{_name(compound)} {compound.estimate.value:.1%} ({_how(compound)}) vs "
            f"{_name(single)} {single.estimate.value:.1%} ({_how(single)}): "
            f"{diff.value * 100:+.1f} points, standard error {diff.standard_error * 100:.1f} "
            f"(t with {diff.degrees_of_freedom:.1f} degrees of freedom, p = {diff.p_value:.3f})")
    if diff.p_value >= stats.LEVEL:
        return {**result, "answer": "tie",
                "text": f"{head}. Within the noise: a tie. The study could have detected about "
                        f"{diff.detectable * 100:.1f} points (80% power); more seeds "
                        f"({more_seeds}) or more evaluation images would see smaller ones."}
    winner = compound.strategy.kind if diff.value > 0 else single.strategy.kind
    ending = ("Compound scaling wins at equal cost." if winner == "compound"
              else f"Scaling {winner} alone wins at equal cost.")
    return {**result, "answer": winner, "text": f"{head}. {ending}"}
