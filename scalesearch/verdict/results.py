"""What a study found: per-model rows, the summary with its verdict, and the files they go to.

`trial_rows` turns stored trials into one row per trained model (candidate x seed), the rows of
``trials.csv``; `summarize` reduces them to ``summary.json``: the best compound candidate, the
baseline, the best of each single dimension, the seed noise and a plain verdict. Pure
functions of the trials; `write_outputs` is the only one that touches files.

Noise: the pooled standard deviation over seeds of every candidate trained more than once (the
baseline always is). The difference between two candidates is called real when it exceeds
twice its standard error, sqrt(s^2/n1 + s^2/n2) with the pooled s, and it counts as a win
only at equal cost: a winner that used more FLOPs than the loser beyond the matching tolerance
(rounding can keep a corner off the budget) gets the answer "unequal", never a win.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from scalesearch.search.trials import dropped
from scalesearch.store.files import write_texts

COLUMNS = (
    "trial", "kind", "seed", "alpha", "beta", "gamma", "phi", "depth_share", "width_share",
    "resolution_share", "depth_mult", "width_mult", "resolution", "params", "flops",
    "activations", "flops_ratio", "flops_matched", "val_accuracy", "loss", "state", "seconds",
    "epochs", "images_per_second", "peak_memory_bytes", "error", "worker", "rerun_of",
)
SINGLE_DIMENSIONS = ("depth", "width", "resolution")


def trial_rows(trials: list[FrozenTrial]) -> pd.DataFrame:
    """One row per trained model (a candidate with one seed), columns `COLUMNS`.

    Surplus trials and duplicates (a network already trained) are left out, and so is a trial
    that was re-run (its re-run carries the
    seeds it had finished); a candidate rejected before training (infeasible) gets one row
    with state "infeasible"; a trial whose worker is still training shows its finished seeds.
    """
    rows = []
    superseded = {t.user_attrs["rerun_of"] for t in trials
                  if "rerun_of" in t.user_attrs}
    for t in trials:
        attrs = t.user_attrs
        if t.number in superseded or dropped(attrs) or "flops" not in attrs:
            continue
        base = {c: attrs.get(c) for c in COLUMNS if c in attrs}
        base["trial"] = t.number
        base["worker"] = attrs.get("worker")
        base["rerun_of"] = attrs.get("rerun_of")
        if "infeasible" in attrs:
            rows.append({**base, "state": "infeasible", "error": attrs["infeasible"]})
            continue
        for run in attrs.get("runs", []):
            state = run["state"]
            if t.state == TrialState.PRUNED:
                state = "pruned"
            rows.append({**base, **{k: run.get(k) for k in (
                "seed", "val_accuracy", "loss", "seconds", "epochs", "images_per_second",
                "peak_memory_bytes", "error")}, "state": state})
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.sort_values(["trial", "seed"], kind="stable").reset_index(drop=True)


def candidates(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate with complete seeds: mean, std (ddof 1) and count of accuracy."""
    done = frame[(frame["state"] == "complete") & frame["val_accuracy"].notna()]
    if done.empty:
        return pd.DataFrame(columns=[*COLUMNS[:18], "val_accuracy_mean", "val_accuracy_std",
                                     "n_seeds"])
    groups = done.groupby("trial", sort=True)
    table = groups.nth(0)[list(COLUMNS[:18])].set_index("trial")
    table["val_accuracy_mean"] = groups["val_accuracy"].mean()
    table["val_accuracy_std"] = groups["val_accuracy"].std(ddof=1)
    table["n_seeds"] = groups["val_accuracy"].count()
    return table.reset_index()


def pooled_noise(frame: pd.DataFrame, column: str = "val_accuracy") -> tuple[float | None, int]:
    """Pooled seed standard deviation of `column` and its degrees of freedom (None, 0 if
    unmeasured)."""
    done = frame[(frame["state"] == "complete") & frame[column].notna()]
    squares, dof = 0.0, 0
    for _, group in done.groupby("trial"):
        if len(group) > 1:
            squares += float(((group[column] - group[column].mean()) ** 2).sum())
            dof += len(group) - 1
    return (math.sqrt(squares / dof), dof) if dof else (None, 0)


def _entry(row: pd.Series | None) -> dict | None:
    if row is None:
        return None
    keys = ("trial", "kind", "alpha", "beta", "gamma", "phi", "depth_mult", "width_mult",
            "resolution", "params", "flops", "flops_ratio", "flops_matched")
    out = {k: _plain(row[k]) for k in keys}
    out["val_accuracy"] = _plain(row["val_accuracy_mean"])
    out["val_accuracy_std"] = _plain(row["val_accuracy_std"])
    out["n_seeds"] = int(row["n_seeds"])
    return out


def _plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _best(table: pd.DataFrame, kind: str) -> pd.Series | None:
    rows = table[table["kind"] == kind]
    if rows.empty:
        return None
    return rows.loc[rows["val_accuracy_mean"].idxmax()]


def summarize(frame: pd.DataFrame, budget: float, tolerance: float = 0.03) -> dict:
    """The study's answer; see the module docstring for how noise and the verdict are made."""
    table = candidates(frame)
    best = _best(table, "compound")
    singles = {kind: _entry(_best(table, kind)) for kind in SINGLE_DIMENSIONS}
    noise, dof = pooled_noise(frame)
    summary = {
        "budget": budget,
        "best": _entry(best),
        "baseline": _entry(_best(table, "baseline")),
        "single_dimension": singles,
        "noise": {"seed_std": noise, "degrees_of_freedom": dof},
        "trained_models": int((frame["state"] == "complete").sum()),
        "candidates": int(len(table)),
    }
    summary["verdict"] = verdict(summary["best"], singles, noise, tolerance)
    return summary


def verdict(
    best: dict | None, singles: dict, noise: float | None, tolerance: float = 0.03
) -> dict:
    """Does the best compound candidate beat the best single dimension by more than noise?

    A win counts only at equal cost: when the winner used more than ``tolerance`` more FLOPs
    than the loser (rounding kept one of them off the budget), the answer is "unequal"."""
    measured = {k: v for k, v in singles.items() if v is not None}
    if best is None or not measured:
        missing = "compound candidate" if best is None else "single-dimension corner"
        return {"answer": "unknown", "text": f"No finished {missing} yet, so no verdict."}
    kind, single = max(measured.items(), key=lambda item: item[1]["val_accuracy"])
    difference = best["val_accuracy"] - single["val_accuracy"]
    result = {"best_single_dimension": kind, "difference": difference, "standard_error": None}
    head = (f"Best compound (alpha {best['alpha']:.3f}, beta {best['beta']:.3f}, gamma "
            f"{best['gamma']:.3f}){_off(best)} {best['val_accuracy']:.1%} vs best single "
            f"dimension ({kind}){_off(single)} {single['val_accuracy']:.1%}: "
            f"{difference * 100:+.1f} points")
    if noise is None:
        return {**result, "answer": "unknown",
                "text": f"{head}; seed noise unmeasured, so no verdict."}
    error = noise * math.sqrt(1 / best["n_seeds"] + 1 / single["n_seeds"])
    result["standard_error"] = error
    tail = f"(seed noise {noise * 100:.1f} points, standard error {error * 100:.1f})"
    if abs(difference) <= 2 * error:
        return {**result, "answer": "tie",
                "text": f"{head} {tail}. The difference is within the noise: add --seeds or "
                        "epochs to tell them apart."}
    winner, loser, name = ((best, single, "Compound scaling") if difference > 0
                           else (single, best, f"Scaling {kind} alone"))
    if winner["flops"] > loser["flops"] * (1 + tolerance):
        return {**result, "answer": "unequal",
                "text": f"{head} {tail}. {name} wins by more than the noise, but with "
                        f"{winner['flops'] / loser['flops']:.2f}x the FLOPs of the other, so "
                        "this is not a like-for-like result (rounding kept one of them off "
                        "the budget; a larger --base-resolution gives finer steps)."}
    answer = "compound" if difference > 0 else kind
    return {**result, "answer": answer,
            "text": f"{head} {tail}. {name} wins by more than the noise."}


def _off(entry: dict) -> str:
    """A warning for a candidate whose FLOPs could not be brought to the budget."""
    matched = entry.get("flops_matched")
    if matched is not None and not bool(matched):
        return f" [off budget: {entry['flops_ratio']:.2f}x FLOPs]"
    return ""


def write_outputs(folder: Path, frame: pd.DataFrame, summary: dict) -> list[Path]:
    """trials.csv and summary.json in `folder`, each written atomically."""
    return write_texts(folder, {"trials.csv": frame.to_csv(index=False),
                                "summary.json": json.dumps(summary, indent=2) + "\n"})


