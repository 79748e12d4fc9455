"""Compound against single-dimension scaling across budgets (the paper's figure 8, table 7).

For each phi of a comparison the budget is growth^phi times the base network's FLOPs, growth =
alpha * beta^2 * gamma^2. Four strategies are brought to that budget with the search's matcher:
compound (the direction of alpha, beta, gamma, i.e. their shares of log(growth); at the search's
budget and phi 1 it is the search's own network) and depth, width and resolution alone. Each is
one network within the tolerance, or two that bracket the budget, interpolated (see
`scalesearch.search.matching`). Plus the baseline (phi 0). Every network is trained `seeds` times
on the comparison's own seeds and evaluated on the **test** split, which the search never looked
at. Per phi the verdict pits compound (and every named strategy) against all three single
dimensions at that budget, as the confirmation does (`scalesearch.verdict.decision`); these
verdicts are secondary to the study's own (one claim per phi and strategy, each at 5%).

Storage: the stage ``<name>.compare`` (`scalesearch.stages.stage`): points are enqueued once,
more phis add points, and a re-run trains only what is missing.

Rows (``compare.csv``): the columns of ``trials.csv`` plus ``test_accuracy``; there ``phi`` is
the comparison's phi (0 for the baseline) and alpha, beta, gamma are per-phi factors of the
network: depth ``base_depth * alpha^phi``, width ``base_width * beta^phi``, resolution
``round(gamma^phi * base)`` (1 for dimensions a network does not scale).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.search.costs import CostCounter
from scalesearch.search.matching import Match, match_budget
from scalesearch.search.space import CORNERS, Direction
from scalesearch.stages.stage import stage_rows
from scalesearch.store.files import write_texts
from scalesearch.verdict import decision, results

STAGE = "compare"
KINDS = ("baseline", "compound", "depth", "width", "resolution")
MAX_PHI = 8.0  # 2^8 = 256x FLOPs is far beyond any proxy training
CSV = "compare.csv"
SUMMARY = "compare.json"


def parse_phis(text: str) -> list[float]:
    """'1,2,3' -> [1.0, 2.0, 3.0] (sorted, duplicates dropped); each in (0, MAX_PHI]."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise BadInput("--phi is empty; give one or more positive numbers such as 1,2,3.")
    phis = []
    for part in parts:
        if not re.fullmatch(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?", part):
            raise BadInput(f"--phi value {part!r} is not a positive number; give a list such "
                           "as 1,2,3.")
        value = float(part)
        if not 0 < value <= MAX_PHI:
            raise BadInput(f"--phi value {part!r} must be above 0 and at most {MAX_PHI:g}.")
        phis.append(value)
    return sorted(set(phis))


def check_coefficients(alpha: float, beta: float, gamma: float) -> tuple[float, float, float]:
    """Coefficients usable for compound scaling: finite, each >= 1, not all 1."""
    values = (alpha, beta, gamma)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 1 for v in values):
        raise BadInput(f"alpha, beta and gamma must be finite numbers of at least 1, got "
                       f"{alpha!r}, {beta!r} and {gamma!r}.")
    if alpha * beta**2 * gamma**2 <= 1.0 + 1e-9:
        raise BadInput("alpha, beta and gamma are all 1, so scaling would not change the "
                       "network; give at least one above 1.")
    return float(alpha), float(beta), float(gamma)


def coefficient_direction(coefficients: tuple[float, float, float]) -> Direction:
    """The shares of log(alpha * beta^2 * gamma^2) that alpha, beta^2 and gamma^2 take."""
    alpha, beta, gamma = coefficients
    logs = (math.log(alpha), 2 * math.log(beta), 2 * math.log(gamma))
    return Direction(*(v / sum(logs) for v in logs))


DEFAULT_STRATEGIES = "compound,depth,width,resolution"


def parse_strategies(text: str) -> list[str]:
    """'compound,fast:0.8,depth' -> the strategies of a comparison, in that order.

    ``fast:A`` is the family of Dollar, Singh and Girshick ("Fast and Accurate Model Scaling",
    CVPR 2021): of a FLOPs factor s, depth grows by s^((1 - A) / 2), width by s^(A / 2) and
    resolution by s^((1 - A) / 4), i.e. shares of log(s) of (1 - A) / 2 on depth, A on width
    and (1 - A) / 2 on resolution; A = 1/3 is uniform compound scaling, A = 1 width alone,
    their fast family A = 0.8."""
    names = [part.strip().lower() for part in str(text).split(",") if part.strip()]
    if not names:
        raise BadInput("--strategies is empty; give a list such as "
                       f"{DEFAULT_STRATEGIES},fast:0.8.")
    for name in names:
        if name in KINDS[1:]:
            continue
        head, _, value = name.partition(":")
        try:
            fine = head == "fast" and 0 < float(value) <= 1
        except ValueError:
            fine = False
        if not fine:
            raise BadInput(f"unknown strategy {name!r}; choose from compound, depth, width, "
                           "resolution and fast:A with 0 < A <= 1 (e.g. fast:0.8).")
    return list(dict.fromkeys(names))


def strategy_direction(name: str, coefficients: tuple[float, float, float]) -> Direction:
    """The direction on the surface that strategy `name` scales along."""
    if name == "compound":
        return coefficient_direction(coefficients)
    if name in CORNERS:
        return CORNERS[name]
    share = float(name.partition(":")[2])
    return Direction((1 - share) / 2, share, (1 - share) / 2)


def candidate_id(phi: float, kind: str) -> int:
    """A strategy's id in the rows: the same for the same (phi, kind) whenever it is planned
    (fast:A strategies after the five fixed kinds, by A)."""
    index = KINDS.index(kind) if kind in KINDS else 10 + round(float(kind.split(":")[1]) * 80)
    return round(phi * 1000) * 100 + index


def _points_of(kind: str, phi: float, match: Match, counter: CostCounter,
               direction: Direction) -> list[dict]:
    """The stage points of one strategy at one phi (its one or two networks)."""
    brackets = ([match.method] if len(match.networks) == 1 else ["lower", "upper"])
    base = counter.base
    points = []
    for network, bracket in zip(match.networks, brackets):
        counts = counter.counts(network.spec)
        spec = network.spec  # its factors per phi, whatever the matcher did to reach it
        factors = [(spec.depth_mult / base.depth_mult) ** (1 / phi),
                   (spec.width_mult / base.width_mult) ** (1 / phi),
                   (spec.resolution / base.resolution) ** (1 / phi)]
        points.append({
            "point": f"{phi:g}:{kind}:{bracket}", "kind": kind, "bracket": bracket,
            "candidate": candidate_id(phi, kind), "budget": match.budget, "phi": phi,
            "alpha": factors[0], "beta": factors[1], "gamma": factors[2],
            "depth_share": direction.depth, "width_share": direction.width,
            "resolution_share": direction.resolution, "depth_mult": network.spec.depth_mult,
            "width_mult": network.spec.width_mult, "resolution": network.spec.resolution,
            "params": counts.params, "flops": counts.flops, "activations": counts.activations,
            "flops_ratio": counter.ratio(spec, "flops"), "cost": counter.cost,
            "cost_ratio": network.ratio, "flops_matched": bracket == "matched",
            "network": network.spec.key(counter.num_classes)})
    return points


def plan_points(coefficients: tuple[float, float, float], phis: list[float],
                counter: CostCounter, tolerance: float,
                strategies: list[str] = KINDS[1:]) -> list[dict]:
    """Every network of a comparison: the baseline, then per phi each strategy, matched to
    growth^phi times the base's cost in the study's cost."""
    base = counter.base
    counts = counter.counts(base)
    points = [{"point": "0:baseline:matched", "kind": "baseline", "bracket": "matched",
               "candidate": candidate_id(0.0, "baseline"), "budget": 1.0, "phi": 0.0,
               "alpha": 1.0, "beta": 1.0, "gamma": 1.0, "depth_share": 0.0,
               "width_share": 0.0, "resolution_share": 0.0, "depth_mult": base.depth_mult,
               "width_mult": base.width_mult, "resolution": base.resolution,
               "params": counts.params, "flops": counts.flops,
               "activations": counts.activations, "flops_ratio": 1.0, "cost": counter.cost,
               "cost_ratio": 1.0, "flops_matched": True,
               "network": base.key(counter.num_classes)}]
    growth = coefficients[0] * coefficients[1] ** 2 * coefficients[2] ** 2
    for phi in phis:
        target = growth**phi
        for name in strategies:
            direction = strategy_direction(name, coefficients)
            match = match_budget(direction, target, base, counter, tolerance)
            points += _points_of(name, phi, match, counter, direction)
    return points


def summarize(frame: pd.DataFrame, meta: dict) -> dict:
    """compare.json: per phi each strategy at the budget on the test split, the noise and, for
    compound and every other strategy that is not a single dimension, the verdict against the
    three single dimensions (secondary verdicts)."""
    judged, noise, trained = results.judge(frame, "test")
    seconds = results.seconds_per_run(frame)
    margin = meta.get("margin", decision.MARGIN)
    opponent = meta.get("opponent")
    cost = meta.get("cost", "flops")
    at_budget, verdicts, table = {}, [], []
    phis = sorted({float(p) for p in frame["phi"].dropna() if p > 0})
    for phi in phis:
        here = [j for j in judged if j.strategy.rows[0]["phi"] == phi]
        kinds = list(dict.fromkeys(j.strategy.kind for j in here))
        best = {kind: results.best_of(here, kind) for kind in kinds}
        at_budget[f"{phi:g}"] = {k: (j.entry("test") if j else None) for k, j in best.items()}
        table += [{"phi": phi, **j.entry("test")} for j in here]
        for kind in [k for k in kinds if k not in results.SINGLE_DIMENSIONS]:
            verdict = decision.decide(best[kind], best, trained, margin, more_seeds="--seeds",
                                      seconds_per_run=seconds)
            budget = f" ({best[kind].strategy.budget:.2f}x {cost})"
            verdict["text"] = f"Secondary: phi {phi:g}{budget}: {verdict['text']}"
            verdicts.append({"phi": phi, "strategy": kind, "secondary": True, **verdict})
    baseline = next((j.entry("test") for j in judged if j.strategy.kind == "baseline"), None)
    strategies = results.strategies(frame, "test")
    a, b, g = meta["coefficients"]
    return {
        "coefficients": {"alpha": a, "beta": b, "gamma": g},
        "seeds": meta["seeds"],
        "cost": cost,
        "phis": phis,
        "accuracy": "test",
        "opponent": opponent,
        "noise": results.noise_entry(noise, trained),
        "baseline": baseline,
        "table": table,
        "at_budget": at_budget,
        "verdicts": verdicts,
        "off_budget": sum(s.method == "off budget" for s in strategies),
    }


def export(study, folder: Path) -> dict:
    """Rewrite compare.csv and compare.json from storage; returns the summary."""
    frame = stage_rows(study)
    summary = summarize(frame, study.user_attrs)
    summary["study"] = study.study_name
    write_texts(folder, {CSV: results.csv_text(frame),
                         SUMMARY: json.dumps(summary, indent=2) + "\n"})
    return summary
