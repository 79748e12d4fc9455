"""The confirmation: the search chooses, fresh runs judge.

Once the search is complete, the compound candidate it found best and each single dimension at
the budget (their networks: one within the tolerance, or the two that bracket the budget) are
trained again, `confirm_seeds` times each, on seeds no search run used, and evaluated on the test
split, which nothing was chosen on. The verdict judges the confirmed compound network against all
three single dimensions (`scalesearch.verdict.decision`): compound wins only by beating each.

At equal cost in other costs too (`confirm_costs`): for each further cost (activations, measured
training time) the same compound direction and the three single dimensions are brought to the
same budget multiple in that cost, trained and judged the same way, so the study also answers
"at equal training time, does compound win?". Each cost's networks form candidates of their own
(`cost_candidate`).
"""

from __future__ import annotations

import pandas as pd

from scalesearch.search.config import COSTS
from scalesearch.search.matching import match_budget
from scalesearch.search.space import CORNERS, Direction
from scalesearch.stages.stage import point_from_row
from scalesearch.verdict import decision, results

STAGE = "confirm"
COST_NAMES = {"flops": "FLOPs", "activations": "activations", "time": "training time"}
CSV = "confirm.csv"


def cost_of(row, default: str) -> str:
    """The cost a row was matched in; `default` where the row has none (an empty or NaN cell:
    rows of studies from before costs, or made up by the calibration benchmark)."""
    cost = row.get("cost")
    return cost if isinstance(cost, str) and cost else default


def plan(search_frame: pd.DataFrame, seeds: int, margin: float = decision.MARGIN
         ) -> tuple[dict, list[dict]] | None:
    """(meta, points) of the confirmation of a finished search, or None when the search has
    no compound candidate or no single dimension at the budget to confirm. `margin` (accuracy
    fraction) is the equivalence margin its verdicts use."""
    judged, _, _ = results.judge(search_frame, "val")
    chosen = {kind: results.best_of(judged, kind) for kind in results.STRATEGIES}
    singles = {k: j for k, j in chosen.items() if k != "compound" and j is not None}
    if chosen["compound"] is None or not singles:
        return None
    opponent = max(singles.values(), key=lambda j: j.estimate.value).strategy.kind
    points = []
    for kind, found in chosen.items():
        if found is None:
            continue
        for row in found.strategy.rows:
            points.append(point_from_row(row, f"{kind}:{row['bracket']}"))
    compound = chosen["compound"].strategy.nearest
    meta = {"seeds": seeds, "opponent": opponent,
            "chosen": {k: (j.strategy.candidate if j else None) for k, j in chosen.items()},
            "direction": [float(compound[k]) for k in ("depth_share", "width_share",
                                                       "resolution_share")],
            "cost": cost_of(compound, "flops"), "margin": margin, "identity": {"seeds": seeds}}
    return meta, points


def cost_candidate(cost: str, kind: str) -> int:
    """The candidate id of a strategy confirmed at equal `cost` beyond the study's own."""
    return (COSTS.index(cost) + 1) * 1_000_000 + ("compound", *CORNERS).index(kind)


def plan_cost(meta: dict, cost: str, counter, budget: float, tolerance: float) -> list[dict]:
    """The points that confirm the search's compound direction and the three single dimensions
    at `budget` times the base network's `cost` (`counter`: a CostCounter in that cost)."""
    directions = {"compound": Direction(*meta["direction"]), **CORNERS}
    points = []
    for kind, direction in directions.items():
        match = match_budget(direction, budget, counter.base, counter, tolerance)
        brackets = [match.method] if len(match.networks) == 1 else ["lower", "upper"]
        for network, bracket in zip(match.networks, brackets):
            spec, counts = network.spec, counter.counts(network.spec)
            row = {"kind": kind, "candidate": cost_candidate(cost, kind), "bracket": bracket,
                   "budget": budget, "alpha": match.alpha, "beta": match.beta,
                   "gamma": match.gamma, "phi": network.phi, "depth_share": direction.depth,
                   "width_share": direction.width, "resolution_share": direction.resolution,
                   "depth_mult": spec.depth_mult, "width_mult": spec.width_mult,
                   "resolution": spec.resolution, "params": counts.params,
                   "flops": counts.flops, "activations": counts.activations,
                   "flops_ratio": counter.ratio(spec, "flops"), "cost": cost,
                   "cost_ratio": network.ratio, "flops_matched": bracket == "matched",
                   "network": spec.key(counter.num_classes)}
            points.append(point_from_row(row, f"{cost}:{kind}:{bracket}"))
    return points


def summarize(frame: pd.DataFrame, meta: dict) -> dict:
    """The confirmation's part of summary.json: each strategy at the budget on the test split,
    the seed noise (per network, and pooled as a summary), and the study's verdict (the one
    headline claim, at the study's own cost); with further costs confirmed, their strategies
    and verdicts by cost too, each marked secondary."""
    judged, noise, trained = results.judge(frame, "test")
    study_cost = meta.get("cost", "flops")
    by_cost: dict[str, list] = {}
    for j in judged:
        by_cost.setdefault(cost_of(j.strategy.rows[0], study_cost), []).append(j)
    own = study_cost if study_cost in by_cost else next(iter(by_cost), study_cost)
    seconds = results.seconds_per_run(frame)
    margin = meta.get("margin", decision.MARGIN)
    at_budget, verdicts = {}, {}
    for cost, group in by_cost.items():
        best = {kind: results.best_of(group, kind) for kind in results.STRATEGIES}
        at_budget[cost] = {k: (j.entry("test") if j else None) for k, j in best.items()}
        verdict = decision.decide(best["compound"], best, trained, margin,
                                  more_seeds="--confirm-seeds", seconds_per_run=seconds)
        label = "" if cost == own else "Secondary: "
        verdicts[cost] = {**verdict, "secondary": cost != own,
                          "text": f"{label}At equal {COST_NAMES[cost]}: {verdict['text']}"}
    return {
        "accuracy": "test",
        "seeds": meta["seeds"],
        "opponent": meta["opponent"],
        "cost": own,
        "at_budget": at_budget.get(own, {}),
        "noise": results.noise_entry(noise, trained),
        "verdict": verdicts.get(own, dict(results.PENDING)),
        "verdicts_by_cost": verdicts,
        "at_budget_by_cost": at_budget,
    }
