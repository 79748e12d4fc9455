"""Compound against single-dimension scaling across budgets (the paper's figure 8, table 7).

For each phi of a comparison, four networks are trained: the compound one (the direction of
alpha, beta, gamma, i.e. their shares of log(alpha * beta^2 * gamma^2), scaled as in the search
so that its measured FLOPs are (alpha * beta^2 * gamma^2)^phi times the base's; at the search's
budget and phi 1 that is the search's own network) and three single-dimension ones (depth only,
width only, resolution only) whose one multiplier is solved so that their measured FLOPs match
the compound network's (`solve_single`, the search's matcher aimed at the compound network's
measured ratio instead of the budget); plus the baseline (phi 0). Each is trained with K seeds
and evaluated on the **test** split, which the search never looks at: the numbers reported here
were not used to choose alpha, beta and gamma.

Storage: a second Optuna study named ``<name>.compare`` in the search study's storage. Its
planned (phi, kind) points are enqueued once (more phis add points), a trial interrupted by
Ctrl-C re-queues itself with its finished seeds, and a re-run trains only what is missing:
the resumption of `scalesearch.search`, reused.

Rows (``compare.csv``) have the columns of ``trials.csv`` plus ``test_accuracy``; there
``phi`` is the comparison's phi (0 for the baseline) and alpha, beta, gamma are per-phi
factors such that every row's network is depth ``base_depth * alpha^phi``, width
``base_width * beta^phi``, resolution ``round(gamma^phi * base)`` (1 for dimensions a model
does not scale).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from scalesearch.errors import BadInput
from scalesearch.net.scaling import NetworkSpec
from scalesearch.search.config import StudyConfig
from scalesearch.search.matching import Match, match_budget
from scalesearch.search.objective import (
    BaseCounter,
    Reporter,
    TrainingFailed,
    sample_std,
    train_seed,
)
from scalesearch.search.space import CORNERS, SINGLE_DIMENSIONS, Direction
from scalesearch.store.files import write_texts
from scalesearch.store.workers import enqueue_rerun, frozen_with_runs, reclaim_dead, worker_id
from scalesearch.verdict.results import COLUMNS, pooled_noise, trial_rows

SUFFIX = ".compare"  # the comparison of study NAME is the Optuna study NAME.compare
KINDS = ("compound", *SINGLE_DIMENSIONS)  # trained at every phi; the baseline once, at phi 0
MAX_PHI = 8.0  # 2^8 = 256x FLOPs is far beyond any proxy training
CSV = "compare.csv"
SUMMARY = "compare.json"
COMPARE_COLUMNS = (*COLUMNS, "test_accuracy")


# ---------------------------------------------------------------------------------------------
# input


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


def compare_name(name: str) -> str:
    return name + SUFFIX


# ---------------------------------------------------------------------------------------------
# the networks (pure, given a FLOPs counter)


@dataclass(frozen=True)
class Model:
    """One network of the comparison and how it relates to the compound one at its phi."""

    kind: str
    phi: float
    spec: NetworkSpec
    alpha: float  # per-phi factors: depth = base_depth * alpha^phi, and so on
    beta: float
    gamma: float
    flops_ratio: float  # measured, over the base network
    target_ratio: float  # matched to: growth^phi (compound), the compound's measured ratio
    flops_matched: bool  # within the tolerance of target_ratio

    def shares(self) -> tuple[float, float, float]:
        """Shares of log(FLOPs growth) spent on depth, width and resolution (nominal)."""
        logs = (math.log(self.alpha), 2 * math.log(self.beta), 2 * math.log(self.gamma))
        total = sum(logs)
        return (0.0, 0.0, 0.0) if total <= 0 else tuple(v / total for v in logs)


def coefficient_direction(coefficients: tuple[float, float, float]) -> Direction:
    """The shares of log(alpha * beta^2 * gamma^2) that alpha, beta^2 and gamma^2 take."""
    alpha, beta, gamma = coefficients
    logs = (math.log(alpha), 2 * math.log(beta), 2 * math.log(gamma))
    return Direction(*(v / sum(logs) for v in logs))


def solve_single(kind: str, target_ratio: float, base: NetworkSpec,
                 flops_ratio: Callable[[NetworkSpec], float], tolerance: float = 0.03) -> Match:
    """The `kind`-only scaling of `base` ('depth', 'width' or 'resolution') whose measured
    FLOPs ratio to `base` is closest to `target_ratio`; `within_tolerance` says whether it is
    within `tolerance` (ceil of depth and whole pixels can make that impossible)."""
    if kind not in CORNERS:
        raise ValueError(f"unknown single dimension {kind!r}")
    return match_budget(CORNERS[kind], target_ratio, base, flops_ratio, tolerance)


def build_model(kind: str, phi: float, coefficients: tuple[float, float, float],
                base: NetworkSpec, flops_ratio: Callable[[NetworkSpec], float],
                tolerance: float = 0.03) -> Model:
    """The network of `kind` at `phi` ('baseline' is the base network at phi 0)."""
    if kind == "baseline":
        return Model("baseline", 0.0, base, 1.0, 1.0, 1.0, 1.0, 1.0, True)
    growth = coefficients[0] * coefficients[1] ** 2 * coefficients[2] ** 2
    if kind == "compound":
        # As in the search: keep the direction (the coefficients' shares of log FLOPs) and
        # solve the scale so that measured FLOPs land on growth^phi, so phi 1 at the search's
        # budget is the search's own network and phi 2 costs about budget^2 FLOPs.
        m = match_budget(coefficient_direction(coefficients), growth**phi, base, flops_ratio,
                         tolerance)
        factors = tuple(c ** (m.phi / phi) for c in (m.alpha, m.beta, m.gamma))
        return Model(kind, phi, m.spec, *factors, m.flops_ratio, growth**phi,
                     m.within_tolerance)
    target = build_model("compound", phi, coefficients, base, flops_ratio, tolerance).flops_ratio
    m = solve_single(kind, target, base, flops_ratio, tolerance)
    # The matcher scales by coefficient^t; as a per-phi factor that is coefficient^(t / phi).
    factors = tuple(c ** (m.phi / phi) for c in (m.alpha, m.beta, m.gamma))
    return Model(kind, phi, m.spec, *factors, m.flops_ratio, target, m.within_tolerance)


def plan_points(phis: list[float]) -> list[tuple[float, str]]:
    """(phi, kind) of every network of a comparison: the baseline, then per phi four."""
    return [(0.0, "baseline"), *((phi, kind) for phi in sorted(phis) for kind in KINDS)]


# ---------------------------------------------------------------------------------------------
# the stored comparison


def create_or_load(name: str, storage: optuna.storages.BaseStorage, settings: dict,
                   coefficients: tuple[float, float, float], seeds: int,
                   phis: list[float]) -> optuna.Study:
    """The comparison study of study `name`, created if missing; points for phis it does not
    have yet are enqueued. Refused when it was made with other coefficients or seeds."""
    cname = compare_name(name)
    try:
        study = optuna.load_study(study_name=cname, storage=storage)
    except KeyError:
        study = optuna.create_study(study_name=cname, storage=storage, direction="maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        study.set_user_attr("parent", name)
        study.set_user_attr("coefficients", list(coefficients))
        study.set_user_attr("seeds", seeds)
        study.set_user_attr("settings", settings)
        study.set_user_attr("points", [])
    stored = study.user_attrs.get("coefficients", [])
    if len(stored) != 3 or not all(math.isclose(a, b, rel_tol=1e-9)
                                   for a, b in zip(stored, coefficients)):
        shown = ", ".join(f"{v:.4g}" for v in stored)
        raise BadInput(f"the comparison of study {name!r} was run with alpha, beta, gamma "
                       f"{shown}; give those (--alpha/--beta/--gamma) or delete the comparison "
                       "to start another.")
    if study.user_attrs.get("seeds") != seeds:
        raise BadInput(f"the comparison of study {name!r} was run with "
                       f"{study.user_attrs.get('seeds')} seed(s), not {seeds}; use "
                       f"--seeds {study.user_attrs.get('seeds')}.")
    points = [tuple(p) for p in study.user_attrs.get("points", [])]
    added = [p for p in plan_points(phis) if p not in points]
    for phi, kind in added:
        study.enqueue_trial({}, user_attrs={"kind": kind, "phi": phi})
    if added:
        study.set_user_attr("points", [list(p) for p in points + added])
    return study


def load_existing(name: str, storage: optuna.storages.BaseStorage) -> optuna.Study | None:
    """The comparison study of `name`, or None if there is none."""
    try:
        return optuna.load_study(study_name=compare_name(name), storage=storage)
    except KeyError:
        return None


class Objective:
    """Trains one (phi, kind) network of the comparison per call, `seeds` times, with test."""

    def __init__(self, config: StudyConfig, data, coefficients: tuple[float, float, float],
                 seeds: int, reporter: Reporter):
        self.config = config
        self.data = data
        self.coefficients = coefficients
        self.seeds = seeds
        self.reporter = reporter
        self.flops_ratio = BaseCounter(config, data)

    def __call__(self, trial: optuna.Trial) -> float:
        runs: list[dict] = list(trial.user_attrs.get("runs", []))
        try:
            return self._run(trial, runs)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: queue the re-run, then let Optuna fail it
            enqueue_rerun(trial.study, frozen_with_runs(trial, runs))
            raise

    def _run(self, trial: optuna.Trial, runs: list[dict]) -> float:
        trial.set_user_attr("worker", worker_id())
        kind, phi = trial.user_attrs["kind"], float(trial.user_attrs["phi"])
        model = build_model(kind, phi, self.coefficients, self.flops_ratio.base, self.flops_ratio,
                            self.config.tolerance)
        self._record(trial, model)
        self.reporter.trial_started(trial.number, f"phi {phi:g} {kind}", model.spec, self.seeds)
        for seed in range(self.seeds):
            if any(r["seed"] == seed for r in runs):
                continue  # trained before this trial was interrupted
            runs.append(train_seed(model.spec, self.data, self.config, seed, trial.number,
                                   self.reporter, evaluate_test=True))
            trial.set_user_attr("runs", runs)
        good = [r for r in runs if r["state"] == "complete"]
        if not good:
            trial.set_user_attr("failure", runs[-1]["error"] or "training failed")
            raise TrainingFailed(runs[-1]["error"])
        tests = [r["test_accuracy"] for r in good]
        trial.set_user_attr("test_accuracy_std", sample_std(tests))
        trial.set_user_attr("n_seeds", len(good))
        return sum(tests) / len(tests)

    def _record(self, trial: optuna.Trial, model: Model) -> None:
        c = self.flops_ratio.counts(model.spec)
        shares = model.shares()
        attrs = {
            "alpha": model.alpha, "beta": model.beta, "gamma": model.gamma,
            "depth_share": shares[0], "width_share": shares[1], "resolution_share": shares[2],
            "depth_mult": model.spec.depth_mult, "width_mult": model.spec.width_mult,
            "resolution": model.spec.resolution, "params": c.params, "flops": c.flops,
            "activations": c.activations, "flops_ratio": c.flops / self.flops_ratio.base_flops,
            "target_flops_ratio": model.target_ratio, "flops_matched": model.flops_matched,
        }
        for key, value in attrs.items():
            if trial.user_attrs.get(key) != value:
                trial.set_user_attr(key, value)


def pending(study: optuna.Study) -> int:
    """Planned networks not finished yet (waiting, or running in a process that died)."""
    return sum(t.state in (TrialState.WAITING, TrialState.RUNNING)
               for t in study.get_trials(deepcopy=False))


def finished(study: optuna.Study) -> int:
    """Planned networks that need no more work: complete, or failed for good."""
    return sum(t.state == TrialState.COMPLETE or "failure" in t.user_attrs
               for t in study.get_trials(deepcopy=False))


def run_compare(study: optuna.Study, config: StudyConfig, data,
                coefficients: tuple[float, float, float], seeds: int,
                reporter: Reporter) -> int:
    """Train every planned network that is not finished; returns how many were trained."""
    objective = Objective(config, data, coefficients, seeds, reporter)
    ran = 0
    while True:
        for number in reclaim_dead(study):
            reporter.message(f"trial {number}'s process died; it will be re-run")
        trials = study.get_trials(deepcopy=False)
        if not any(t.state == TrialState.WAITING for t in trials):
            return ran
        study.optimize(objective, n_trials=1, catch=(TrainingFailed,),
                       callbacks=[lambda s, t: reporter.trial_finished(t)])
        ran += 1


# ---------------------------------------------------------------------------------------------
# the numbers (pure functions of the rows)


def compare_rows(trials: list[FrozenTrial]) -> pd.DataFrame:
    """One row per trained network and seed: the columns of trials.csv plus test_accuracy."""
    frame = trial_rows(trials)
    tests = {(t.number, r["seed"]): r.get("test_accuracy")
             for t in trials for r in t.user_attrs.get("runs", [])}
    frame["test_accuracy"] = [tests.get((int(t), int(s)) if pd.notna(s) else None)
                              for t, s in zip(frame["trial"], frame["seed"])]
    frame["test_accuracy"] = frame["test_accuracy"].astype(float)
    return frame[list(COMPARE_COLUMNS)].sort_values(["phi", "trial", "seed"], kind="stable") \
        .reset_index(drop=True)


def accuracy_column(frame: pd.DataFrame) -> str:
    """'test_accuracy' when the rows have it, else 'val_accuracy'."""
    if "test_accuracy" in frame.columns and frame["test_accuracy"].notna().any():
        return "test_accuracy"
    return "val_accuracy"


def comparison_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (phi, kind): FLOPs, match, and mean, std (ddof 1) and count of the test
    (and validation) accuracy over complete seeds; sorted by phi, then kind order."""
    columns = ["phi", "kind", "trial", "depth_mult", "width_mult", "resolution", "params",
               "flops", "flops_ratio", "flops_matched", "test_mean", "test_std", "val_mean",
               "n_seeds"]
    done = frame[(frame["state"] == "complete") & frame["test_accuracy"].notna()]
    if done.empty:
        return pd.DataFrame(columns=columns)
    groups = done.groupby("trial", sort=True)
    table = groups.nth(0).set_index("trial")[columns[:2] + columns[3:10]]
    table["test_mean"] = groups["test_accuracy"].mean()
    table["test_std"] = groups["test_accuracy"].std(ddof=1)
    table["val_mean"] = groups["val_accuracy"].mean()
    table["n_seeds"] = groups["test_accuracy"].count().astype(int)
    table = table.reset_index()
    order = {k: i for i, k in enumerate(("baseline", *KINDS))}
    table = table.assign(_order=table["kind"].map(order)).sort_values(["phi", "_order"])
    return table[columns].reset_index(drop=True)


def verdicts(table: pd.DataFrame, noise: float | None, tolerance: float = 0.03) -> list[dict]:
    """Per phi: does compound beat the best single dimension by more than twice the standard
    error (pooled seed noise)? As in the search, a win counts only at equal cost: a winner with
    more than `tolerance` more FLOPs than the loser gets 'unequal'. Each entry: phi, answer
    ('compound', a kind, 'tie', 'unequal', 'unknown'), difference, standard_error,
    best_single_dimension and a sentence."""
    out = []
    for phi, rows in table[table["kind"] != "baseline"].groupby("phi", sort=True):
        by_kind = {r["kind"]: r for _, r in rows.iterrows()}
        entry = {"phi": float(phi), "answer": "unknown", "difference": None,
                 "standard_error": None, "best_single_dimension": None}
        singles = [by_kind[k] for k in SINGLE_DIMENSIONS if k in by_kind]
        if "compound" not in by_kind or not singles:
            missing = "compound network" if "compound" not in by_kind else "single dimension"
            out.append({**entry, "text": f"phi {phi:g}: no finished {missing} yet."})
            continue
        compound = by_kind["compound"]
        single = max(singles, key=lambda r: r["test_mean"])
        difference = float(compound["test_mean"] - single["test_mean"])
        head = (f"phi {phi:g} ({compound['flops_ratio']:.2f}x FLOPs): compound "
                f"{compound['test_mean']:.1%} vs best single dimension ({single['kind']}"
                f"{'' if single['flops_matched'] else ', off the FLOPs by more than the tolerance'}"
                f") {single['test_mean']:.1%}: {difference * 100:+.1f} points")
        entry.update(difference=difference, best_single_dimension=single["kind"])
        if noise is None:
            out.append({**entry, "text": f"{head}; seed noise unmeasured (one seed), so no "
                                         "verdict."})
            continue
        error = noise * math.sqrt(1 / compound["n_seeds"] + 1 / single["n_seeds"])
        entry["standard_error"] = error
        tail = f"(standard error {error * 100:.1f} points)"
        if difference > 2 * error:
            answer, end = "compound", "compound scaling wins by more than the noise."
        elif difference < -2 * error:
            answer, end = single["kind"], f"scaling {single['kind']} alone wins by more than " \
                                          "the noise."
        else:
            answer, end = "tie", "the difference is within the noise."
        if answer != "tie":
            winner, loser = (compound, single) if answer == "compound" else (single, compound)
            if winner["flops_ratio"] > loser["flops_ratio"] * (1 + tolerance):
                answer = "unequal"
                end = (f"{end[:-1]}, but with {winner['flops_ratio'] / loser['flops_ratio']:.2f}x "
                       "the other's FLOPs, so not a like-for-like result.")
        out.append({**entry, "answer": answer, "text": f"{head} {tail}: {end}"})
    return out


def summarize(frame: pd.DataFrame, coefficients, seeds: int, tolerance: float = 0.03) -> dict:
    """compare.json: the coefficients, the table, the noise and the verdicts."""
    table = comparison_table(frame)
    noise, dof = pooled_noise(frame, "test_accuracy")
    records = json.loads(table.to_json(orient="records"))
    return {
        "coefficients": {"alpha": coefficients[0], "beta": coefficients[1],
                         "gamma": coefficients[2]},
        "seeds": seeds,
        "phis": sorted({float(p) for p in frame["phi"].dropna() if p > 0}),
        "accuracy": "test",
        "noise": {"test_seed_std": noise, "degrees_of_freedom": dof},
        "table": records,
        "verdicts": verdicts(table, noise, tolerance),
        "off_budget": int((~table["flops_matched"].astype(bool)).sum()) if len(table) else 0,
    }


def write_outputs(folder: Path, frame: pd.DataFrame, summary: dict) -> list[Path]:
    """compare.csv and compare.json in `folder`, each written atomically."""
    return write_texts(folder, {CSV: frame.to_csv(index=False),
                                SUMMARY: json.dumps(summary, indent=2) + "\n"})


def export(study: optuna.Study, folder: Path) -> dict:
    """Rewrite compare.csv and compare.json from storage; returns the summary."""
    frame = compare_rows(study.get_trials(deepcopy=False))
    summary = summarize(frame, tuple(study.user_attrs["coefficients"]),
                        study.user_attrs["seeds"],
                        study.user_attrs.get("settings", {}).get("tolerance", 0.03))
    summary["study"] = study.study_name
    write_outputs(folder, frame, summary)
    return summary
