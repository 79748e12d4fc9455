"""Every figure a stored study supports, drawn from its storage into results/<name>/plots/.

Which figures: the frontier and the history (any finished trial), the search surface (a
finished candidate on the surface), the timeline (trials with start and end times), Optuna's
parameter importances (at least `MIN_IMPORTANCE_TRIALS` finished trials with parameters),
the scaling curves (a comparison with a finished network, `scalesearch compare`) and the
fidelity figures (`scalesearch fidelity`). What cannot
be drawn yet is listed with the reason. The drawing is in the other modules of
`scalesearch.report`; this module reads the storage and decides.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.search.space import PARAMS

MIN_IMPORTANCE_TRIALS = 4  # importances from fewer points say nothing
# The frontier against each cost besides FLOPs: the rows' column, the axis label.
OTHER_COSTS = {
    "activations": ("activations", "activations (outputs of conv and linear layers; log scale)"),
    "time": ("seconds_per_image", "measured training seconds per image (log scale)"),
}


def _costed(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows with the cost `column` in the place of FLOPs, each network's mean over its
    seeds (a measured time differs from seed to seed); BadInput when nothing has it."""
    if column not in frame or frame[column].notna().sum() == 0:
        raise BadInput(f"no trained network recorded its {column.replace('_', ' ')}")
    mean = frame.groupby("trial")[column].transform("mean")
    costed = frame.assign(flops=mean)
    return costed[costed["flops"].notna() & (costed["flops"] > 0)]


@dataclass
class Drawn:
    """A study as read for its figures and report, and the figure files written."""

    where: object  # scalesearch.runner.Where
    settings: dict
    frame: pd.DataFrame  # trials.csv rows
    summary: dict  # summary.json
    compare_frame: pd.DataFrame | None  # compare.csv rows, None without a comparison
    compare_summary: dict | None
    figures: dict[str, list[Path]] = field(default_factory=dict)  # name -> [png, svg]
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why not drawn
    fidelity_summary: dict | None = None  # fidelity.json, None before `scalesearch fidelity`


def proxy_text(settings: dict) -> str:
    """'synthetic, efficientnet-b0 d 0.5 w 0.5, 3 epochs, batch 128, sgd' for figure titles."""
    res = settings.get("base_resolution")
    return (f"{settings.get('dataset', '?')}, {settings.get('base', 'efficientnet-b0')} "
            f"d {settings.get('base_depth')} "
            f"w {settings.get('base_width')}{f' at {res} px' if res else ''}, "
            f"{settings.get('epochs')} epoch(s), batch {settings.get('batch_size')}, "
            f"{settings.get('optimizer')}")


def draw_study(name: str | None, results_dir: Path, storage: str | None) -> Drawn:
    """Read study `name` (default: the latest) and draw every figure its data supports."""
    from scalesearch.report.frontier import plot_frontier
    from scalesearch.report.history import plot_history, plot_importances, plot_timeline
    from scalesearch.report.surface import plot_surface
    from scalesearch.runs.files import study_summary
    from scalesearch.runs.loading import load_study
    study, where, settings = load_study(name, results_dir, storage)
    trials = study.get_trials(deepcopy=False)
    summary, rows = study_summary(study, where)
    frame = rows["trials.csv"]
    if not (frame["state"] == "complete").any():
        raise BadInput(f"study {where.name!r} has no finished trials yet; run it first "
                       f"(scalesearch run --name {where.name}).")
    budget = settings.get("budget")
    drawn = Drawn(where, settings, frame, summary, *_comparison(study, where))
    out = where.folder / "plots"
    seeds = settings.get("seeds")
    search = (f"{proxy_text(settings)}; search at {budget:g}x, {seeds} seed(s) per candidate "
              f"(baseline {max(2, seeds or 1)})")
    points = strategy_points(frame)
    best = summary["best"]
    found = (best["alpha"], best["beta"], best["gamma"]) if best else None
    star = next((p for p in points if best and p["candidate"] == best["candidate"]), None)

    def attempt(key: str, draw) -> None:
        try:
            drawn.figures[key] = draw()
        except BadInput as err:
            drawn.skipped[key] = str(err)

    cost = settings.get("cost", "flops")
    attempt("frontier", lambda: plot_frontier(
        frame, out, f"Accuracy vs FLOPs: {search}", budget=budget if cost == "flops" else None,
        best=star, interpolated=[p for p in points if p["method"] == "interpolated"]))
    for other, (column, label) in OTHER_COSTS.items():  # every network has all three costs
        attempt(f"frontier_{other}", lambda column=column, label=label, other=other: plot_frontier(
            _costed(frame, column), out, f"Accuracy vs {other}: {search}",
            budget=budget if cost == other else None, stem=f"frontier_{other}", x_label=label))
    attempt("surface", lambda: plot_surface(
        pd.DataFrame(points), out, f"Search surface at {budget:g}x (validation accuracy at "
        f"the budget): {search}", found))
    attempt("history", lambda: plot_history(frame, out, f"Search history: {search}"))
    attempt("timeline", lambda: plot_timeline(
        _spans(trials), out, f"Search timeline: {search}"))
    attempt("importances", lambda: plot_importances(
        _importances(study), out, f"Parameter importances (Optuna PED-ANOVA): {search}"))
    _draw_scaling(drawn, out, attempt)
    from scalesearch.report.fidelity import draw_fidelity
    from scalesearch.runs.fidelity import load_summary

    drawn.fidelity_summary = load_summary(study, where)  # fidelity and fidelity_scatter
    draw_fidelity(drawn, out, attempt, proxy_text(settings))
    return drawn


def _comparison(study, where) -> tuple[pd.DataFrame | None, dict | None]:
    """The `compare` stage's rows and summary (written to its files), or (None, None)."""
    from scalesearch.stages import compare as cmp
    from scalesearch.stages import stage

    compare_study = stage.load_existing(where.name, cmp.STAGE, study._storage)
    if compare_study is None:
        return None, None
    return stage.stage_rows(compare_study), cmp.export(compare_study, where.folder)


def _draw_scaling(drawn: Drawn, out: Path, attempt) -> None:
    """The scaling curves of the comparison, or why not."""
    from scalesearch.report.curves import plot_scaling, scaling_table

    summary = drawn.compare_summary
    if not summary or not summary["table"]:
        drawn.skipped["scaling"] = (f"no comparison yet; run scalesearch compare "
                                    f"{drawn.where.name} --phi 1,2")
        return
    c, k = summary["coefficients"], summary["seeds"]
    title = (f"Compound (α={c['alpha']:.3g}, β={c['beta']:.3g}, γ={c['gamma']:.3g}) vs "
             f"single-dimension scaling at equal FLOPs, test accuracy: "
             f"{proxy_text(drawn.settings)}, {k} seed(s) per network")
    attempt("scaling", lambda: plot_scaling(scaling_table(summary), out, title))


def strategy_points(frame: pd.DataFrame) -> list[dict]:
    """Every candidate judged at its budget, as a point of the figures: kind, shares, FLOPs at
    the budget, validation accuracy there, and for interpolated ones the two networks."""
    from scalesearch.verdict.results import judge

    judged, _, trained = judge(frame, "val")
    base = frame[frame["kind"] == "baseline"]
    base_flops = float(base["flops"].iloc[0] / base["flops_ratio"].iloc[0]) if len(base) else None
    points = []
    for j in judged:
        s, e = j.strategy, j.estimate
        ends = [(float(r["flops"]), float(trained[r["network"]].mean())) for r in s.rows]
        flops = (s.budget * base_flops if s.method == "interpolated" and base_flops
                 else ends[0][0])
        near = s.nearest
        points.append({"candidate": s.candidate, "kind": s.kind, "method": s.method,
                       "flops": flops, "val_accuracy_mean": e.value,
                       "standard_error": e.standard_error, "ends": ends,
                       **{k: near[k] for k in ("alpha", "beta", "gamma", "depth_share",
                                               "width_share", "resolution_share")},
                       "trial": s.candidate})
    return points


def _spans(trials) -> pd.DataFrame:
    rows = [{"trial": t.number, "kind": t.user_attrs.get("kind", "?"),
             "start": t.datetime_start, "end": t.datetime_complete,
             "state": t.state.name.lower()}
            for t in trials if not t.user_attrs.get("surplus")]
    frame = pd.DataFrame(rows, columns=["trial", "kind", "start", "end", "state"])
    frame["start"] = pd.to_datetime(frame["start"])
    frame["end"] = pd.to_datetime(frame["end"])
    return frame


def _importances(study) -> dict[str, float]:
    """Optuna's PED-ANOVA importances of u and v over the finished compound candidates. What
    the study lacks for them is said (BadInput); an error of the computation itself is not
    hidden."""
    import optuna
    from optuna.trial import TrialState

    usable = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if set(PARAMS) <= set(t.params) and t.user_attrs.get("bracket") != "upper"]
    if len(usable) < MIN_IMPORTANCE_TRIALS:
        raise BadInput(f"parameter importances need {MIN_IMPORTANCE_TRIALS} finished "
                       f"candidates with parameters, the study has {len(usable)}")
    values = [t.value for t in usable]
    if max(values) - min(values) <= 0:
        raise BadInput("every candidate has the same accuracy; importances are undefined")
    # PED-ANOVA needs no scikit-learn (Optuna's fANOVA does, and it is not a dependency).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "some regimes have less than 2 trials": small studies
        candidates = optuna.create_study(direction="maximize")  # one trial per candidate
        candidates.add_trials(usable)
        found = optuna.importance.get_param_importances(
            candidates, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
            params=list(PARAMS))
    return {k: float(v) for k, v in found.items() if math.isfinite(v)}
