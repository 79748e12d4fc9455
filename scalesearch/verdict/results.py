"""What a stage of a study measured: per-run rows, the networks, the strategies at the budget.

`trial_rows` turns stored trials into one row per trained run (network x seed), the rows of
``trials.csv`` (and ``compare.csv``, ``confirm.csv``). Pure functions of those rows give the
rest:

- `network_runs`: each distinct network's per-seed, per-image correctness on one split (a
  network trained by two trials counts once: the lower-numbered trial's runs);
- `strategies`: each candidate (a point of the search, or a strategy of a comparison) with the
  networks it is judged by: one network at the budget, or two that bracket it with the weights
  that interpolate its accuracy at the budget linearly in log FLOPs;
- `judge`: every complete strategy's accuracy at the budget with its standard error
  (`scalesearch.verdict.stats`: each network's own seed noise, the pooled noise for networks
  trained once, paired image noise).

`search_summary` reduces a search to ``summary.json``; `write_outputs` is the only function
that touches files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from scalesearch.search.trials import dropped
from scalesearch.store.bits import unpack
from scalesearch.store.files import write_texts
from scalesearch.verdict import stats

COLUMNS = (
    "trial", "candidate", "kind", "bracket", "seed", "training_seed", "alpha", "beta", "gamma",
    "phi", "depth_share", "width_share", "resolution_share", "depth_mult", "width_mult",
    "resolution", "params", "flops", "activations", "flops_ratio", "cost", "cost_ratio",
    "budget", "flops_matched", "val_accuracy", "loss", "state", "seconds", "epochs",
    "images_per_second", "seconds_per_image", "peak_memory_bytes", "error", "worker",
    "rerun_of", "reuses", "network",
)
# Kept with the rows for the statistics, left out of the CSV files (one bit per image).
CORRECTNESS = ("val_correct", "test_correct")
SINGLE_DIMENSIONS = ("depth", "width", "resolution")
STRATEGIES = ("compound", *SINGLE_DIMENSIONS)
RUN_KEYS = ("seed", "training_seed", "val_accuracy", "loss", "seconds", "epochs",
            "images_per_second", "seconds_per_image", "peak_memory_bytes", "error",
            "test_accuracy", *CORRECTNESS)
ON_BUDGET = ("matched", "interpolated")


def trial_rows(trials: list[FrozenTrial], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per trained run (a network with one seed): columns `COLUMNS`, then `extra`
    (per-trial or per-run keys such as ``test_accuracy``), then `CORRECTNESS`.

    Left out: surplus trials and duplicates, and a trial that was re-run (its re-run carries the
    seeds it had finished). A network rejected before training (infeasible) gets one row with
    state "infeasible"; a trial whose network another trial trains gets one row with state
    "reused" and the other's number in ``reuses``; a trial still training shows its finished
    seeds."""
    columns = [*COLUMNS, *(c for c in extra if c not in COLUMNS), *CORRECTNESS]
    rows = []
    superseded = {t.user_attrs["rerun_of"] for t in trials if "rerun_of" in t.user_attrs}
    for t in trials:
        attrs = t.user_attrs
        if t.number in superseded or dropped(attrs) or "flops" not in attrs:
            continue
        base = {c: attrs.get(c) for c in columns if c in attrs and c not in RUN_KEYS}
        base["trial"] = t.number
        base.setdefault("candidate", t.number)  # studies made before candidates had two networks
        base.setdefault("bracket", "matched" if attrs.get("flops_matched", True) else "off budget")
        if "infeasible" in attrs:
            rows.append({**base, "state": "infeasible", "error": attrs["infeasible"]})
            continue
        if "same_network_as" in attrs:
            rows.append({**base, "state": "reused", "reuses": attrs["same_network_as"]})
            continue
        for run in attrs.get("runs", []):
            state = "pruned" if t.state == TrialState.PRUNED else run["state"]
            rows.append({**base, **{k: run.get(k) for k in RUN_KEYS if k in columns},
                         "state": state})
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["trial", "seed"]).reset_index(drop=True)  # both unique together


def csv_text(frame: pd.DataFrame) -> str:
    """The rows as CSV, without the per-image correctness."""
    return frame.drop(columns=[c for c in CORRECTNESS if c in frame.columns]).to_csv(index=False)


def _complete(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame[(frame["state"] == "complete") & frame[column].notna()]


def network_runs(frame: pd.DataFrame, split: str = "val") -> dict[str, np.ndarray]:
    """Network key -> (seeds, images) bool matrix of its complete runs on `split`, from the
    lowest-numbered trial that trained it."""
    column = f"{split}_correct"
    done = _complete(frame, column)
    out: dict[str, np.ndarray] = {}
    for (_, key), group in done.groupby(["trial", "network"]):  # sorted: lowest trial first
        if key not in out:
            out[key] = np.stack([unpack(text) for text in group[column]])
    return out


def cost_ratio(row: dict) -> float:
    """A row's cost over the base network's in its study's cost (FLOPs in studies made before
    the cost could be chosen)."""
    value = row.get("cost_ratio")
    return float(row["flops_ratio"] if value is None or pd.isna(value) else value)


@dataclass
class Strategy:
    """A candidate judged at its budget: its networks and how they combine."""

    candidate: int
    kind: str
    budget: float
    method: str  # "matched", "interpolated", "off budget", "baseline", or "incomplete"
    rows: list[dict]  # one per network (the first row of its trial), lower network first
    terms: list[tuple[float, str]] = field(default_factory=list)  # (weight, network key)

    @property
    def trials(self) -> list[int]:
        return [int(r["trial"]) for r in self.rows]

    @property
    def nearest(self) -> dict:
        """The row of the network closest to the budget."""
        return min(self.rows, key=lambda r: abs(math.log(cost_ratio(r) / self.budget)))


def strategies(frame: pd.DataFrame, split: str = "val",
               trained: dict[str, np.ndarray] | None = None) -> list[Strategy]:
    """Every candidate of the rows, with the networks that judge it at its budget (see the
    module docstring); "incomplete" until each of those networks has a complete run."""
    trained = network_runs(frame, split) if trained is None else trained
    groups: dict[int, list[dict]] = {}
    for row in frame.drop_duplicates("trial").to_dict("records"):
        groups.setdefault(int(row["candidate"]), []).append(row)
    out = []
    for candidate, firsts in sorted(groups.items()):
        kind = firsts[0]["kind"]
        budget = float(firsts[0]["budget"]) if pd.notna(firsts[0]["budget"]) else math.nan
        brackets = {r["bracket"]: r for r in firsts}
        if kind == "baseline":
            rows, method, weights = [firsts[0]], "baseline", [1.0]
        elif "lower" in brackets or "upper" in brackets:
            rows = [brackets[b] for b in ("lower", "upper") if b in brackets]
            method = "interpolated" if len(rows) == 2 else "incomplete"
            weights = (stats.interpolation_weights([cost_ratio(r) for r in rows], budget)
                       if len(rows) == 2 else [])
        else:
            rows = [firsts[0]]
            method = firsts[0]["bracket"]  # "matched" or "off budget"
            weights = [1.0]
        if any(r["network"] not in trained for r in rows):
            method = "incomplete"
        terms = [(w, r["network"]) for w, r in zip(weights, rows)]
        out.append(Strategy(candidate, kind, budget, method, rows, terms))
    return out


@dataclass
class Judged:
    """A strategy's accuracy at the budget."""

    strategy: Strategy
    estimate: stats.Estimate

    def entry(self, split: str) -> dict:
        """The summary's record of it: what, how judged, how accurate (``<split>_accuracy``)."""
        s, e = self.strategy, self.estimate
        near = s.nearest
        out = {key: _plain(near.get(key)) for key in (
            "kind", "alpha", "beta", "gamma", "depth_share", "width_share", "resolution_share",
            "depth_mult", "width_mult", "resolution", "params", "flops", "flops_ratio")}
        out.update({"candidate": s.candidate, "method": s.method, "trials": s.trials,
                    "budget": s.budget, f"{split}_accuracy": e.value,
                    "standard_error": e.standard_error})
        out["networks"] = [{"trial": int(r["trial"]), "weight": w,
                            **{k: _plain(r[k]) for k in ("depth_mult", "width_mult",
                                                         "resolution", "flops_ratio")}}
                           for (w, _), r in zip(s.terms, s.rows)]
        return out


def judge(frame: pd.DataFrame, split: str = "val") -> tuple[list[Judged], stats.SeedNoise,
                                                          dict[str, np.ndarray]]:
    """Every complete strategy's estimate at its budget, the pooled seed noise, the networks."""
    trained = network_runs(frame, split)
    noise = stats.seed_noise(trained)
    judged = [Judged(s, stats.estimate(s.terms, trained, noise))
              for s in strategies(frame, split, trained)
              if s.method in (*ON_BUDGET, "baseline")]
    return judged, noise, trained


def best_of(judged: list[Judged], kind: str) -> Judged | None:
    """The judged strategy of `kind` on the budget with the highest estimate (never one that
    is off the budget)."""
    pool = [j for j in judged if j.strategy.kind == kind and j.strategy.method in ON_BUDGET]
    return max(pool, key=lambda j: j.estimate.value) if pool else None


def noise_entry(noise: stats.SeedNoise, trained: dict[str, np.ndarray] | None = None) -> dict:
    """The seed noise for summary.json: pooled over the networks trained more than once (a
    summary), and with `trained` each such network's own standard deviation over its runs
    (what the verdict uses)."""
    entry = {"seed_std": noise.seed_std if noise.measured else None,
             "degrees_of_freedom": noise.degrees_of_freedom, "images": noise.images}
    if trained is not None:
        own = {key: stats.network_noise(m) for key, m in trained.items()}
        entry["per_network"] = {key: {"seed_std": n.seed_std, "runs": n.degrees_of_freedom + 1}
                                for key, n in own.items() if n.measured}
    return entry


def seconds_per_run(frame: pd.DataFrame) -> float | None:
    """The mean wall-clock seconds of one complete training in the rows (None without)."""
    done = frame[(frame["state"] == "complete") & frame["seconds"].notna()]
    return float(done["seconds"].mean()) if len(done) else None


PENDING = {"answer": "undecided", "text": "No verdict yet: the confirmation on fresh seeds runs "
           "once the search is complete."}


def search_summary(frame: pd.DataFrame, budget: float) -> dict:
    """summary.json of a search: the best compound candidate at the budget, each single
    dimension at the budget, the baseline, the seed noise. The verdict comes from the
    confirmation (`scalesearch.stages.confirm`); until then it is `PENDING`."""
    judged, noise, _ = judge(frame, "val")
    at_budget = {}
    for kind in STRATEGIES:
        found = best_of(judged, kind)
        at_budget[kind] = found.entry("val") if found else None
    baseline = next((j.entry("val") for j in judged if j.strategy.kind == "baseline"), None)
    return {
        "budget": budget,
        "accuracy": "val",
        "best": at_budget["compound"],
        "baseline": baseline,
        "at_budget": at_budget,
        "noise": noise_entry(noise),
        "trained_models": int((frame["state"] == "complete").sum()),
        "candidates": len(strategies(frame)),
        "verdict": dict(PENDING),
    }


def _plain(value):
    """A value JSON can hold: a numpy scalar as the Python one, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def write_outputs(folder: Path, frame: pd.DataFrame, summary: dict, csv: str = "trials.csv",
                  summary_name: str = "summary.json") -> list[Path]:
    """The rows (without per-image correctness) and the summary in `folder`, atomically."""
    return write_texts(folder, {csv: csv_text(frame),
                                summary_name: json.dumps(summary, indent=2) + "\n"})
