"""The fidelity check: does the proxy's answer hold when the finalists train longer?

What is trained. For each longer schedule (a number of epochs above the study's proxy epochs
E), the study's finalists again: the confirmed compound network and each single dimension at
the budget (their one matched network or the two that bracket it, exactly the points of the
``<name>.confirm`` stage), the baseline, and the k best and k worst *other* compound candidates
of the search (judged at the budget on the search's validation runs, as `results.judge` does).
Each network is trained `seeds` times on the fidelity seeds (`STAGE_SEEDS["fidelity"]`, disjoint
from every other stage's) with the study's recipe and only the epoch count changed (the
warm-up + cosine schedule follows the epochs), and judged on the test split. Run k of a network
uses the same seed at every longer schedule (paired across schedules).

The proxy's accuracy of a network is its proxy-length accuracy on the test split: the
confirmation's runs where it trained the network (fresh seeds, nothing chosen on them), and
otherwise (the baseline, the extremes) runs of this stage at E epochs on the upper half of the
fidelity seeds (`PROXY_OFFSET`), so that no long run shares a seed with its own proxy. The
search's validation accuracies are not used: they are on another split and are the very
numbers that chose the finalists and the extremes (the winner's curse would favour the proxy).

Statistics, per schedule, over the networks measured at both lengths: Spearman's rho and
Kendall's tau-b (`scipy.stats`) between the networks' mean accuracies, each with a 95%
percentile bootstrap interval that resamples networks and, within each drawn network, its seeds
at each length. The interval is meant for the rank correlation of the networks' true (seed-
free) accuracies; seed noise pulls the point estimate towards 0, and resampling seeds widens
the interval to cover it. Simulated (10 networks, 2 seeds, seed noise half the networks'
spread, 300 cases; tests/test_fidelity.py) it covers a true correlation of 0.6 in 97% of cases
for Spearman and 98% for Kendall: slightly conservative, as seed noise counts both in the
spread of the network means and through the seed resampling. At a true 0.9 with that noise
Spearman's covers only 87% (Kendall's 94%): the attenuation outgrows the interval. Choosing
the best and worst candidates spreads the networks out, which raises a rank correlation
compared with a random set of networks. The verdict at each schedule
is the confirmation's: the same compound and single-dimension networks, the same statistics
(`decision.decide`), marked secondary; a schedule "held" the proxy's verdict only when both were
decided (a win or equivalence) and agree (`schedule_status`).

Storage: the stage ``<name>.fidelity`` (`scalesearch.stages.stage`); point ids carry the
schedule, so a schedule added later adds only its points.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd

from scalesearch.search.objective import earlier
from scalesearch.search.training import sample_std, train_seed
from scalesearch.stages.stage import StageObjective, point_from_row
from scalesearch.verdict import decision, results

STAGE = "fidelity"
CSV = "fidelity.csv"
SUMMARY = "fidelity.json"
PROXY_OFFSET = 500  # run k of a proxy-length point uses fidelity seed PROXY_OFFSET + k
MAX_SEEDS = PROXY_OFFSET
RESAMPLES = 2000
LEVEL = 0.95
EXTRA = ("test_accuracy", "phi", "schedule", "role", "point")
ROLES = ("confirmed", "baseline", "best", "worst")


# ---------------------------------------------------------------------------------------------
# rank correlations with a bootstrap over networks and seeds


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis (average ranks for ties); NaN where a side is
    constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx**2).sum(axis=-1) * (ry**2).sum(axis=-1))
    return np.where(den > 0, (rx * ry).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b along the last axis; NaN where a side is constant."""
    sx = np.sign(x[..., :, None] - x[..., None, :])
    sy = np.sign(y[..., :, None] - y[..., None, :])
    den = np.sqrt((sx**2).sum(axis=(-2, -1)) * (sy**2).sum(axis=(-2, -1)))
    num = (sx * sy).sum(axis=(-2, -1))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _padded(runs: list) -> tuple[np.ndarray, np.ndarray]:
    """(networks, most seeds) values padded with NaN, and each network's seed count."""
    counts = np.array([len(r) for r in runs])
    values = np.full((len(runs), max(counts)), np.nan)
    for i, r in enumerate(runs):
        values[i, :len(r)] = r
    return values, counts


def _resampled_means(values: np.ndarray, counts: np.ndarray, picks: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """(resamples, networks) means of each drawn network's seeds, drawn with replacement."""
    drawn = counts[picks]
    width = values.shape[1]
    seeds = np.floor(rng.random((*picks.shape, width)) * drawn[..., None]).astype(int)
    chosen = values[picks[..., None], seeds]
    used = np.arange(width) < drawn[..., None]
    return np.where(used, chosen, 0.0).sum(axis=-1) / drawn


def rank_correlations(proxy: list, longer: list, resamples: int = RESAMPLES,
                      seed: int = 0) -> dict:
    """Spearman and Kendall between the networks' mean accuracies at two lengths (`proxy[i]`
    and `longer[i]`: per-seed accuracies of network i), each with its bootstrap interval (see
    the module docstring). Values are None when undefined (fewer than 3 networks, or one side
    the same for every network)."""
    from scipy.stats import kendalltau, spearmanr

    n = len(proxy)
    out = {"networks": n, "resamples": resamples, "level": LEVEL}
    empty = {"value": None, "low": None, "high": None}
    if n < 3:
        return {**out, "spearman": dict(empty), "kendall": dict(empty)}
    x = np.array([np.mean(r) for r in proxy])
    y = np.array([np.mean(r) for r in longer])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(resamples, n))
    bx = _resampled_means(*_padded(proxy), picks, rng)
    by = _resampled_means(*_padded(longer), picks, rng)
    tail = (1 - LEVEL) / 2
    for name, point, rows in (("spearman", spearmanr, spearman_rows),
                              ("kendall", kendalltau, kendall_rows)):
        value = float(point(x, y).statistic) if np.ptp(x) > 0 and np.ptp(y) > 0 else math.nan
        if not math.isfinite(value):
            out[name] = dict(empty)
            continue
        boot = rows(bx, by)
        boot = boot[np.isfinite(boot)]
        low, high = np.quantile(boot, [tail, 1 - tail]) if boot.size else (value, value)
        out[name] = {"value": value, "low": float(low), "high": float(high)}
    return out


# ---------------------------------------------------------------------------------------------
# the plan


def choose(search_frame: pd.DataFrame, confirm_meta: dict, extremes: int) -> dict:
    """The search's candidates besides the confirmed ones: the baseline, and the `extremes`
    best and worst other compound candidates at the budget (validation runs)."""
    judged, _, _ = results.judge(search_frame, "val")
    compound = confirm_meta["chosen"]["compound"]
    others = sorted((j for j in judged if j.strategy.kind == "compound"
                     and j.strategy.method in results.ON_BUDGET
                     and j.strategy.candidate != compound),
                    key=lambda j: -j.estimate.value)
    best = others[:extremes]
    rest = others[len(best):]
    worst = rest[-extremes:] if extremes else []
    baseline = next((j.strategy.candidate for j in judged if j.strategy.kind == "baseline"),
                    None)
    return {"baseline": baseline, "best": [j.strategy.candidate for j in best],
            "worst": [j.strategy.candidate for j in worst]}


def _point(row: dict, epochs: int, role: str, proxy: bool = False) -> dict:
    point = f"{epochs}:{role}:{row['kind']}:{int(row['candidate'])}:{row['bracket']}"
    return point_from_row(row, point, epochs=epochs, schedule=epochs, role=role, proxy=proxy)


def plan(search_frame: pd.DataFrame, confirm_points: list[dict], confirm_meta: dict,
         proxy_epochs: int, schedules: list[int], seeds: int, extremes: int,
         selected: dict | None = None) -> tuple[dict, list[dict]]:
    """(meta, points) of the fidelity stage at `schedules`. `confirm_points` are the attributes
    of the confirmation's points; `selected` the candidates an existing stage chose (so that a
    search that grew since picks no new extremes)."""
    selected = selected or choose(search_frame, confirm_meta, extremes)
    chosen = {c for c in confirm_meta["chosen"].values() if c is not None}
    # The study's own cost only: points confirmed at further costs are other candidates.
    confirm_points = [p for p in confirm_points if p.get("candidate") in chosen]
    by_id = {s.candidate: s for s in results.strategies(search_frame, "val")}
    others = [(role, row) for role in ("baseline", "best", "worst")
              for candidate in ([selected["baseline"]] if role == "baseline" else selected[role])
              if candidate is not None for row in by_id[candidate].rows]
    points = [_point(row, proxy_epochs, role, proxy=True) for role, row in others]
    for epochs in schedules:
        points += [_point(row, epochs, "confirmed") for row in confirm_points]
        points += [_point(row, epochs, role) for role, row in others]
    identity = {"seeds": seeds, "extremes": extremes, "proxy_epochs": proxy_epochs}
    meta = {**identity, "opponent": confirm_meta["opponent"], "chosen": confirm_meta["chosen"],
            "margin": confirm_meta.get("margin", decision.MARGIN),
            "selected": selected, "identity": identity}
    return meta, points


def confirmation_points(confirmation: optuna.Study) -> list[dict]:
    """The attributes of each point of the confirmation stage, once each."""
    seen: dict[str, dict] = {}
    for t in confirmation.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if "point" in attrs and "network" in attrs and attrs["point"] not in seen:
            seen[attrs["point"]] = dict(attrs)
    return list(seen.values())


def planned_schedules(meta: dict) -> list[int]:
    """The longer schedules of a stage, from its point ids."""
    epochs = {int(p.split(":", 1)[0]) for p in meta.get("points", [])}
    return sorted(e for e in epochs if e > meta["proxy_epochs"])


class FidelityObjective(StageObjective):
    """Trains one point per call with the point's own epochs; a network is trained once per
    schedule (another point of the same schedule with the same network points to it)."""

    def __init__(self, config, data, seeds: int, reporter):
        super().__init__(config, data, STAGE, seeds, reporter)

    def same_as(self, trial: optuna.Trial) -> int | None:
        attrs = trial.user_attrs
        return None if "rerun_of" in attrs else earlier(trial, lambda t: (
            t.user_attrs.get("network") == attrs["network"]
            and t.user_attrs.get("epochs") == attrs["epochs"]
            and "same_network_as" not in t.user_attrs))

    def label(self, attrs: dict) -> str:
        return f"{attrs['kind']} ({attrs['epochs']} epochs)"

    def train(self, spec, trial: optuna.Trial, k: int) -> dict:
        attrs = trial.user_attrs
        offset = PROXY_OFFSET if attrs.get("proxy") else 0
        record = train_seed(spec, self.data, self.config, offset + k, trial.number,
                            self.reporter, stage=STAGE, evaluate_test=True,
                            epochs=attrs["epochs"])
        return {**record, "seed": k}


# ---------------------------------------------------------------------------------------------
# what it found


def stage_rows(study: optuna.Study) -> pd.DataFrame:
    """The stage's rows: the trials.csv columns plus test accuracy, schedule, role, point."""
    return results.trial_rows(study.get_trials(deepcopy=False), extra=EXTRA)


def runs_by_network(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Network key -> its complete runs' test accuracies (from the lowest-numbered trial)."""
    done = frame[(frame["state"] == "complete") & frame["test_accuracy"].notna()]
    out: dict[str, list[float]] = {}
    for (_, key), group in done.groupby(["trial", "network"], sort=True):
        out.setdefault(key, [float(v) for v in group["test_accuracy"]])
    return out


def proxy_runs(frame: pd.DataFrame, confirm_frame: pd.DataFrame, proxy_epochs: int
               ) -> dict[str, tuple[list[float], str]]:
    """Network key -> (proxy-length test accuracies, where from: "confirm" or "fidelity")."""
    own = runs_by_network(frame[frame["schedule"] == proxy_epochs])
    out = {key: (runs, "fidelity") for key, runs in own.items()}
    out.update({key: (runs, "confirm") for key, runs in runs_by_network(confirm_frame).items()})
    return out


def judge_schedule(here: pd.DataFrame, proxies: dict, meta: dict, seed: int = 0) -> dict:
    """One schedule's rows judged: the rank correlations between the proxy's and this
    schedule's accuracies over the networks measured at both, and the verdict with the
    confirmation's networks and statistics; each chosen strategy at the budget."""
    longer = runs_by_network(here)
    keys = [k for k in longer if k in proxies]
    found = rank_correlations([proxies[k][0] for k in keys], [longer[k] for k in keys],
                              seed=seed)
    judged, noise, trained = results.judge(here, "test")
    by_id = {j.strategy.candidate: j for j in judged}
    chosen = meta["chosen"]
    verdict = decision.decide(by_id.get(chosen["compound"]),
                              {k: by_id.get(chosen.get(k)) for k in results.SINGLE_DIMENSIONS},
                              trained, meta.get("margin", decision.MARGIN), more_seeds="--seeds",
                              seconds_per_run=results.seconds_per_run(here))
    wanted = {**chosen, "baseline": meta["selected"]["baseline"]}
    at_budget = {kind: (by_id[c].entry("test") if c in by_id else None)
                 for kind, c in wanted.items()}
    others = [{"role": role, **by_id[c].entry("test")}
              for role in ("best", "worst") for c in meta["selected"][role] if c in by_id]
    return {**found, "at_budget": at_budget, "others": others,
            "noise": results.noise_entry(noise, trained),
            "verdict": {**verdict, "secondary": True}}


HELD, CHANGED, UNDECIDED_HERE, NOT_INFORMATIVE = (
    "held", "changed", "not decided at this length", "not informative at the proxy")


def schedule_status(proxy_answer: str, answer: str) -> str:
    """How a longer schedule's verdict bears on the proxy's: ``held`` only when both were
    decided (a win or equivalence) and agree; ``changed`` when both were decided and differ;
    otherwise the proxy was not decided (``not informative at the proxy``: nothing can hold)
    or this length was not (``not decided at this length``)."""
    if proxy_answer not in decision.DECIDED:
        return NOT_INFORMATIVE
    if answer not in decision.DECIDED:
        return UNDECIDED_HERE
    return HELD if answer == proxy_answer else CHANGED


def verdict_changes(schedules: list[dict], proxy_answer: str) -> dict:
    """Each finished schedule's status against the proxy's verdict (`schedule_status`), and
    from which schedule on it differs for good."""
    for s in schedules:
        s["status"] = schedule_status(proxy_answer, s["verdict"]["answer"])
        s["held"] = s["status"] == HELD
        s["reversed"] = s["status"] == CHANGED
    done = [s for s in schedules if s["complete"]]
    changes_from = None
    for s in reversed(done):
        if not s["reversed"]:
            break
        changes_from = s["epochs"]
    return {"winner_changes": any(s["reversed"] for s in done),
            "first_change": next((s["epochs"] for s in done if s["reversed"]), None),
            "changes_from": changes_from}


def network_table(frame, proxies: dict, schedules: list[int]) -> list[dict]:
    """One entry per network of the longer schedules: what it is, its proxy accuracy, and its
    accuracy at each schedule (mean, std over seeds, seeds)."""
    def spread(runs):
        return ({"mean": float(np.mean(runs)), "std": sample_std(runs), "seeds": len(runs)}
                if runs else None)

    by_schedule = {s: runs_by_network(frame[frame["schedule"] == s]) for s in schedules}
    table = []
    longer = frame[frame["schedule"].isin(schedules)].sort_values("trial", kind="stable")
    for key, group in longer.groupby("network", sort=False):
        first = group.iloc[0]
        proxy, source = proxies.get(key, (None, None))
        table.append({
            "network": key, "kind": first["kind"], "roles": sorted(set(group["role"])),
            "candidates": sorted({int(c) for c in group["candidate"]}),
            "depth_mult": float(first["depth_mult"]), "width_mult": float(first["width_mult"]),
            "resolution": int(first["resolution"]), "flops_ratio": float(first["flops_ratio"]),
            "proxy": spread(proxy), "proxy_source": source,
            "schedules": {str(s): spread(by_schedule[s].get(key)) for s in schedules}})
    return table
