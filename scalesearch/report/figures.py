"""Every figure a stored study supports, drawn from its storage into results/<name>/plots/.

Which figures: the frontier and the history (any finished trial), the search surface (a
finished candidate on the surface), the timeline (trials with start and end times), Optuna's
parameter importances (at least `MIN_IMPORTANCE_TRIALS` finished trials with parameters) and
the scaling curves (a comparison with a finished network, `scalesearch compare`). What cannot
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

MIN_IMPORTANCE_TRIALS = 4  # importances from fewer points say nothing


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


def proxy_text(settings: dict) -> str:
    """'synthetic, base d 0.5 w 0.5, 3 epochs, batch 128, sgd' for figure titles."""
    res = settings.get("base_resolution")
    return (f"{settings.get('dataset', '?')}, base d {settings.get('base_depth')} "
            f"w {settings.get('base_width')}{f' at {res} px' if res else ''}, "
            f"{settings.get('epochs')} epoch(s), batch {settings.get('batch_size')}, "
            f"{settings.get('optimizer')}")


def draw_study(name: str | None, results_dir: Path, storage: str | None) -> Drawn:
    """Read study `name` (default: the latest) and draw every figure its data supports."""
    from scalesearch.report.curves import plot_scaling
    from scalesearch.report.frontier import plot_frontier
    from scalesearch.report.history import plot_history, plot_importances, plot_timeline
    from scalesearch.report.surface import plot_surface
    from scalesearch.runs.loading import load_study
    from scalesearch.stages import compare as cmp
    from scalesearch.verdict.results import summarize, trial_rows

    study, where, settings = load_study(name, results_dir, storage)
    trials = study.get_trials(deepcopy=False)
    frame = trial_rows(trials)
    if not (frame["state"] == "complete").any():
        raise BadInput(f"study {where.name!r} has no finished trials yet; run it first "
                       f"(scalesearch run --name {where.name}).")
    budget = settings.get("budget")
    summary = summarize(frame, budget or float("nan"))
    compare_study = cmp.load_existing(where.name, study._storage)
    compare_frame = compare_summary = None
    if compare_study is not None and compare_study.user_attrs.get("coefficients"):
        compare_summary = cmp.export(compare_study, where.folder)
        compare_frame = cmp.compare_rows(compare_study.get_trials(deepcopy=False))
    drawn = Drawn(where, settings, frame, summary, compare_frame, compare_summary)
    out = where.folder / "plots"
    seeds = settings.get("seeds")
    search = (f"{proxy_text(settings)}; search at {budget:g}x, {seeds} seed(s) per candidate "
              f"(baseline {max(2, seeds or 1)})")
    best = summary["best"]
    found = (best["alpha"], best["beta"], best["gamma"]) if best else None

    def attempt(key: str, draw) -> None:
        try:
            drawn.figures[key] = draw()
        except BadInput as err:
            drawn.skipped[key] = str(err)

    attempt("frontier", lambda: plot_frontier(
        frame, out, f"Accuracy vs FLOPs: {search}", budget=budget,
        best_trial=best["trial"] if best else None))
    attempt("surface", lambda: plot_surface(
        frame, out, f"Search surface at {budget:g}x (validation accuracy): {search}", found))
    attempt("history", lambda: plot_history(frame, out, f"Search history: {search}"))
    attempt("timeline", lambda: plot_timeline(
        _spans(trials), out, f"Search timeline: {search}"))
    attempt("importances", lambda: plot_importances(
        _importances(study), out, f"Parameter importances (Optuna PED-ANOVA): {search}"))
    if compare_frame is None or compare_frame.empty:
        drawn.skipped["scaling"] = (f"no comparison yet; run scalesearch compare {where.name} "
                                    "--phi 1,2")
    else:
        c = compare_summary["coefficients"]
        k = compare_summary["seeds"]
        title = (f"Compound (α={c['alpha']:.3g}, β={c['beta']:.3g}, γ={c['gamma']:.3g}) vs "
                 f"single-dimension scaling at matched FLOPs, test accuracy: "
                 f"{proxy_text(settings)}, {k} seed(s) per network")
        attempt("scaling", lambda: plot_scaling(compare_frame, out, title))
    return drawn


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
    import optuna
    from optuna.trial import TrialState

    usable = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if {"depth_share", "width_fraction"} <= set(t.params)]
    if len(usable) < MIN_IMPORTANCE_TRIALS:
        raise BadInput(f"parameter importances need {MIN_IMPORTANCE_TRIALS} finished "
                       f"candidates with parameters, the study has {len(usable)}")
    values = [t.value for t in usable]
    if max(values) - min(values) <= 0:
        raise BadInput("every candidate has the same accuracy; importances are undefined")
    # PED-ANOVA needs no scikit-learn (Optuna's fANOVA does, and it is not a dependency).
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "some regimes have less than 2 trials": small studies
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                params=["depth_share", "width_fraction"])
    except (ValueError, RuntimeError, ImportError, ZeroDivisionError) as err:
        raise BadInput(f"Optuna could not compute importances ({err})") from None
    return {k: float(v) for k, v in found.items() if math.isfinite(v)}
