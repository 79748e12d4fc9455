"""The confirmation: the search chooses, fresh runs judge.

Once the search is complete, the compound candidate it found best and each single dimension at
the budget (their networks: one within the tolerance, or the two that bracket the budget) are
trained again, `confirm_seeds` times each, on seeds no search run used, and evaluated on the test
split, which nothing was chosen on. The verdict compares the confirmed compound network with the
single dimension the *search* found best (`scalesearch.verdict.decision`); the other two single
dimensions are confirmed too and reported beside it.
"""

from __future__ import annotations

import pandas as pd

from scalesearch.stages.stage import point_from_row
from scalesearch.verdict import decision, results

STAGE = "confirm"
CSV = "confirm.csv"


def plan(search_frame: pd.DataFrame, seeds: int) -> tuple[dict, list[dict]] | None:
    """(meta, points) of the confirmation of a finished search, or None when the search has
    no compound candidate or no single dimension at the budget to confirm."""
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
    meta = {"seeds": seeds, "opponent": opponent,
            "chosen": {k: (j.strategy.candidate if j else None) for k, j in chosen.items()},
            "identity": {"seeds": seeds}}
    return meta, points


def summarize(frame: pd.DataFrame, meta: dict) -> dict:
    """The confirmation's part of summary.json: each strategy at the budget on the test split,
    the seed noise, and the study's verdict."""
    judged, noise, trained = results.judge(frame, "test")
    best = {kind: results.best_of(judged, kind) for kind in results.STRATEGIES}
    verdict = decision.decide(best["compound"], best.get(meta["opponent"]), trained, noise,
                              more_seeds="--confirm-seeds")
    return {
        "accuracy": "test",
        "seeds": meta["seeds"],
        "opponent": meta["opponent"],
        "at_budget": {k: (j.entry("test") if j else None) for k, j in best.items()},
        "noise": results.noise_entry(noise),
        "verdict": verdict,
    }
