"""The verdict: does compound scaling beat every single dimension at equal cost?

The compound network the search chose is judged against all three single dimensions at the same
budget (each matched within the tolerance, or bracketed by two networks), on fresh runs (new
seeds, the test split), so neither side profits from the luck that selected it. Each difference
is paired over the images and uses each network's own seed noise (`scalesearch.verdict.stats`).

What each answer claims (LEVEL = 5%, two-sided):

- ``compound``: compound beats depth, width and resolution alone. An intersection-union test:
  each of its one-sided tests rejects at LEVEL / 2, and the claim as a whole then holds at
  LEVEL / 2 with no correction.
- ``depth``, ``width``, ``resolution``: that dimension alone beats compound; the three
  one-sided tests (each at LEVEL / 2) are Holm-adjusted, and among the dimensions that win,
  the one ahead by most is named. The two kinds of win exclude each other, so the headline
  answer names a false winner at most LEVEL of the time: LEVEL / 2 on each side.
- ``equivalent``: compound is within the margin of the best single dimension: two one-sided
  tests at LEVEL each (a 90% interval): it is not worse than any single dimension by the margin
  (an intersection-union test over the three), and not better than at least one by it.
- ``inconclusive``: none of these; the verdict says how many runs (or evaluation images) the
  observed noise would need to detect a difference of the margin, and how long that takes.
- ``undecided``: something is missing (a strategy at the budget, or a second run of a network).

Bracketed strategies. A strategy between two networks is a chord of an unknown curve (one
network below the budget, one above): curvature and a non-monotone pair bias the chord, and its
variance counts seeds and images, not that model error. The rule written down here is that a
strategy's accuracy at the budget lies between those of its two networks (it does not peak or
dip in between). A claim must then hold whichever of them is the truth: a win must beat each
network of the loser (the better one included, which usually has more cost than the budget)
with each network of the winner (the worse one included), and equivalence must hold for every
pair. So every test is made on each pair of networks (compound network, single-dimension
network), and the chord (interpolated in log cost) is what the verdict reports, not what it
decides on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from scalesearch.verdict import stats
from scalesearch.verdict.results import SINGLE_DIMENSIONS, Judged, cost_ratio

MARGIN = 0.01  # default equivalence margin: 1 point of accuracy (README, "The verdict")
# Runs of each compared network below which nothing is decided. Three, not two: a network's
# noise is its own, and Welch's test with one degree of freedom on a side named 8.7% false
# winners where one network's seeds were ten times noisier than the other's (600 simulated
# pairs, tests/test_stats.py); with two degrees of freedom, 4.5%.
MIN_RUNS = 3
DECIDED = ("compound", *SINGLE_DIMENSIONS, "equivalent")


def _name(kind: str) -> str:
    return kind if kind == "compound" or ":" in kind else f"{kind} alone"


def _how(judged: Judged) -> str:
    """Where the strategy's networks lie, as multiples of the base network's cost."""
    rows = judged.strategy.rows
    if len(rows) == 2:
        return (f"interpolated between {cost_ratio(rows[0]):.2f}x and "
                f"{cost_ratio(rows[1]):.2f}x")
    return f"{cost_ratio(rows[0]):.2f}x"


def _points(value: float) -> str:
    return f"{value * 100:+.1f}"


def _networks(judged: Judged) -> list[tuple[str, dict]]:
    """(network key, row) of each network a strategy is judged by."""
    return [(key, row) for (_, key), row in zip(judged.strategy.terms, judged.strategy.rows)]


def _pair_entry(first: dict, second: dict, diff: stats.Estimate, margin: float) -> dict:
    low, high = diff.interval()
    low90, high90 = diff.interval(2 * stats.LEVEL)
    return {"compound_trial": int(first["trial"]), "opponent_trial": int(second["trial"]),
            "opponent_cost_ratio": cost_ratio(second), "difference": diff.value,
            "standard_error": diff.standard_error, "degrees_of_freedom": diff.degrees_of_freedom,
            "interval": [low, high], "interval_90": [low90, high90],
            "p_compound_better": diff.p_above(0.0), "p_single_better": diff.p_below(0.0),
            "not_worse_by_margin": diff.p_above(-margin) < stats.LEVEL,
            "not_better_by_margin": diff.p_below(margin) < stats.LEVEL,
            "detectable_difference": diff.detectable}


def opponent_test(candidate: Judged, single: Judged, trained: Mapping[str, np.ndarray],
                  margin: float = MARGIN) -> tuple[dict, list[stats.Estimate]]:
    """The candidate against one single dimension: the chord difference with its interval,
    and the tests on each pair of their networks; with the pairs' estimates."""
    chord = stats.difference(candidate.strategy.terms, single.strategy.terms, trained)
    pairs, estimates = [], []
    for key, row in _networks(candidate):
        for other, other_row in _networks(single):
            diff = stats.difference([(1.0, key)], [(1.0, other)], trained)
            estimates.append(diff)
            pairs.append(_pair_entry(row, other_row, diff, margin))
    low, high = chord.interval()
    entry = {
        "difference": chord.value, "standard_error": chord.standard_error,
        "degrees_of_freedom": chord.degrees_of_freedom, "interval": [low, high],
        "p_value": chord.p_value,
        "compound_better": all(p["p_compound_better"] < stats.LEVEL / 2 for p in pairs),
        # the intersection-union p-value of "the single dimension is better", for Holm
        "p_single_better": max(p["p_single_better"] for p in pairs),
        "not_worse_by_margin": all(p["not_worse_by_margin"] for p in pairs),
        "not_better_by_margin": all(p["not_better_by_margin"] for p in pairs),
        "detectable_difference": max(p["detectable_difference"] for p in pairs),
        "pairs": pairs}
    return entry, estimates


def holm(p_values: Mapping[str, float], level: float) -> list[str]:
    """The hypotheses Holm's step-down procedure rejects at family level `level`."""
    rejected = []
    for rank, (name, p) in enumerate(sorted(p_values.items(), key=lambda kv: kv[1])):
        if p > level / (len(p_values) - rank):
            break
        rejected.append(name)
    return rejected


def _runs(judged: Judged, trained: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Network key -> its runs (a (runs, images) matrix; a vector is one run)."""
    return {key: stats.as_matrix(trained[key]).shape[0] for key, _ in _networks(judged)}


def decide(candidate: Judged | None, singles: Mapping[str, Judged | None],
           trained: Mapping[str, np.ndarray], margin: float = MARGIN,
           more_seeds: str = "--seeds", seconds_per_run: float | None = None) -> dict:
    """The verdict entry (see the module docstring). `candidate` is compound (or a named
    strategy of a comparison) at the budget, `singles` each single dimension there;
    `more_seeds` is the flag that adds runs; `seconds_per_run`, the measured seconds of one
    training, prices what would decide an inconclusive verdict."""
    name = candidate.strategy.kind if candidate is not None else "compound"
    missing = [k for k in SINGLE_DIMENSIONS if singles.get(k) is None]
    if candidate is None or missing:
        what = (f"{_name(name)} network" if candidate is None
                else " or ".join(f"{k} network" for k in missing))
        return {"answer": "undecided", "margin": margin,
                "text": f"No verdict: no finished {what} at the budget yet."}
    runs = _runs(candidate, trained)
    for kind in SINGLE_DIMENSIONS:
        runs.update(_runs(singles[kind], trained))
    fewest = min(runs.values())
    if fewest < MIN_RUNS:
        return {"answer": "undecided", "margin": margin, "runs": fewest,
                "text": f"No verdict: a compared network was trained {fewest} time(s), and "
                        f"each needs at least {MIN_RUNS} runs for noise of its own "
                        f"({more_seeds} {MIN_RUNS} or more)."}
    opponents, estimates = {}, []
    for kind in SINGLE_DIMENSIONS:
        opponents[kind], found = opponent_test(candidate, singles[kind], trained, margin)
        estimates += found
    strongest = max(SINGLE_DIMENSIONS, key=lambda k: singles[k].estimate.value)
    head = opponents[strongest]
    result = {"answer": "", "claim": "", "strategy": name, "margin": margin,
              "single_dimension": strongest, "difference": head["difference"],
              "standard_error": head["standard_error"],
              "degrees_of_freedom": head["degrees_of_freedom"], "interval": head["interval"],
              "p_value": head["p_value"],
              "detectable_difference": max(o["detectable_difference"]
                                           for o in opponents.values()),
              "runs": fewest, "images": int(np.shape(next(iter(trained.values())))[-1]),
              "opponents": opponents}
    winners = holm({k: o["p_single_better"] for k, o in opponents.items()}, stats.LEVEL / 2)
    if all(o["compound_better"] for o in opponents.values()):
        result["answer"] = name
    elif winners:
        result["answer"] = max(winners, key=lambda k: -opponents[k]["difference"])
    elif (all(o["not_worse_by_margin"] for o in opponents.values())
          and any(o["not_better_by_margin"] for o in opponents.values())):
        result["answer"] = "equivalent"
    else:
        result["answer"] = "inconclusive"
        result["to_decide"] = _to_decide(estimates, margin, runs, seconds_per_run)
    result["claim"] = _claim(result, name)
    result["text"] = _text(result, candidate, singles, more_seeds)
    return result


def _to_decide(estimates: list[stats.Estimate], margin: float, runs: dict[str, int],
               seconds_per_run: float | None) -> dict:
    """What would let the observed noise detect a difference of the margin (80% power) on
    every pair: runs per network, the trainings that adds and their time; or more images."""
    needed = stats.runs_for(margin, estimates)
    out: dict = {"runs": needed, "images_factor": None, "trainings": None, "minutes": None}
    if needed is None:
        out["images_factor"] = stats.images_for(margin, estimates)
        return out
    out["trainings"] = sum(max(0, needed - k) for k in runs.values())
    if seconds_per_run is not None and math.isfinite(seconds_per_run):
        out["minutes"] = out["trainings"] * seconds_per_run / 60
    return out


def _claim(result: dict, name: str) -> str:
    """What the answer claims, in one sentence."""
    answer, margin = result["answer"], result["margin"] * 100
    if answer == name:
        return (f"{_name(name).capitalize()} beats each single dimension at the budget: every "
                "interval of it minus depth, width and resolution alone (each of their "
                "networks) lies above zero.")
    if answer in SINGLE_DIMENSIONS:
        return (f"Scaling {answer} alone beats {_name(name)} at the budget (one-sided tests "
                "over the three single dimensions, Holm-adjusted).")
    if answer == "equivalent":
        return (f"{_name(name).capitalize()} is within {margin:g} point(s) of the best single "
                f"dimension: no single dimension is better by {margin:g} point(s), and "
                f"{_name(name)} is not better than all of them by as much (90% intervals, "
                "two one-sided tests).")
    return (f"Neither a win nor equivalence within {margin:g} point(s): at this noise the "
            "study cannot tell.")


def _text(result: dict, candidate: Judged, singles: Mapping[str, Judged],
          more_seeds: str) -> str:
    """The verdict in words: the answer, the closest contest with its interval, the other
    contests, and what would decide it."""
    answer, name = result["answer"], result["strategy"]
    head_kind = result["single_dimension"]
    low, high = result["interval"]
    lead = {name: f"{_name(name).capitalize()} wins.",
            "equivalent": f"Equivalent within {result['margin'] * 100:g} point(s).",
            "inconclusive": "Inconclusive."}.get(answer, f"Scaling {answer} alone wins.")
    parts = [f"{lead} {_name(name)} {candidate.estimate.value:.1%} ({_how(candidate)}) vs "
             f"{_name(head_kind)} {singles[head_kind].estimate.value:.1%} "
             f"({_how(singles[head_kind])}): {_points(result['difference'])} points, 95% "
             f"interval {_points(low)} to {_points(high)} (standard error "
             f"{result['standard_error'] * 100:.1f}, t with "
             f"{result['degrees_of_freedom']:.1f} degrees of freedom)."]
    others = [f"{_name(k)} {_points(o['difference'])} ({_points(o['interval'][0])} to "
              f"{_points(o['interval'][1])})"
              for k, o in result["opponents"].items() if k != head_kind]
    parts.append(f"Against the others: {'; '.join(others)}.")
    parts.append(result["claim"])
    parts.append(f"The study could have detected about "
                 f"{result['detectable_difference'] * 100:.1f} points (80% power, on every "
                 "pair of networks).")
    decide_with = result.get("to_decide")
    if decide_with:
        parts.append(_deciding(decide_with, result["margin"], more_seeds))
    return " ".join(parts)


def _deciding(found: dict, margin: float, more_seeds: str) -> str:
    points = f"{margin * 100:g} point(s)"
    if found["runs"] is None:
        factor = found["images_factor"]
        more = (f"about {factor:.1f} times as many evaluation images" if factor
                else "less noise per run than more runs or images can give")
        return f"To detect {points} would take {more}."
    when = (f" (about {found['minutes']:.0f} minutes of training at this study's measured "
            "seconds per run, on one worker)" if found["minutes"] is not None else "")
    return (f"To detect {points} with 80% power would take {found['runs']} runs of each "
            f"compared network ({more_seeds} {found['runs']}): {found['trainings']} more "
            f"trainings{when}.")
