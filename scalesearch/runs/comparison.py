"""Running `scalesearch compare` on a stored study: plan the comparison, train what is missing."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from scalesearch.errors import BadInput
from scalesearch.runs.files import Where
from scalesearch.runs.loading import load_data, load_study, stored_config
from scalesearch.runs.runner import Exporting, Interrupted, sigterm_as_interrupt
from scalesearch.search.training import Reporter
from scalesearch.verdict.decision import MIN_RUNS


@dataclass
class Comparison:
    """A comparison about to run: where, with what, how much is left."""

    where: Where
    study: object  # the search's Optuna study
    compare_study: object  # <name>.compare
    coefficients: tuple[float, float, float]
    phis: list[float]
    seeds: int

    @property
    def resume(self) -> str:
        phis = ",".join(f"{p:g}" for p in self.phis)
        return f"scalesearch compare {self.where.name} --phi {phis} --seeds {self.seeds}"


def coefficients_of(study, where: Where, alpha, beta, gamma) -> tuple[float, float, float]:
    """--alpha/--beta/--gamma, or the study's best compound candidate."""
    from scalesearch.stages.compare import check_coefficients
    from scalesearch.verdict.results import search_summary, trial_rows

    given = [v for v in (alpha, beta, gamma) if v is not None]
    if given:
        if len(given) != 3:
            raise BadInput("give all three of --alpha, --beta and --gamma, or none to use the "
                           "study's best.")
        return check_coefficients(alpha, beta, gamma)
    frame = trial_rows(study.get_trials(deepcopy=False))
    if not (frame["state"] == "complete").any():
        raise BadInput(f"study {where.name!r} has no finished trials yet; run it first "
                       f"(scalesearch run --name {where.name}) or give --alpha, --beta and "
                       "--gamma.")
    best = search_summary(frame, study.user_attrs["settings"].get("budget"))["best"]
    if best is None:
        raise BadInput(f"study {where.name!r} has no finished compound candidate to take "
                       "alpha, beta and gamma from; give --alpha, --beta and --gamma.")
    return best["alpha"], best["beta"], best["gamma"]


def _opponent(study) -> str | None:
    """The single dimension the search found best at its budget (on validation runs)."""
    from scalesearch.verdict.results import search_summary, trial_rows

    summary = search_summary(trial_rows(study.get_trials(deepcopy=False)), None)
    singles = {k: v for k, v in summary["at_budget"].items() if k != "compound" and v}
    return max(singles, key=lambda k: singles[k]["val_accuracy"]) if singles else None


def _counter(study, config):
    """The base network and its FLOPs counter, without loading the data when the search
    recorded the data set's class count and base resolution."""
    from scalesearch.search.costs import CostCounter

    known = study.user_attrs.get("classes")
    if known:
        return CostCounter(config, *known)
    return CostCounter.for_data(config, load_data(config))


def prepare(name: str | None, results_dir: Path, storage: str | None, phi: str,
            seeds: int | None, alpha, beta, gamma, device: str | None = None,
            strategies: str | None = None) -> Comparison:
    """Check the flags, open the study and plan its comparison (nothing is trained yet)."""
    import optuna

    from scalesearch.stages import compare as cmp
    from scalesearch.stages import stage

    phis = cmp.parse_phis(phi)
    names = cmp.parse_strategies(strategies or cmp.DEFAULT_STRATEGIES)
    if seeds is not None and seeds < 1:
        raise BadInput(f"--seeds must be at least 1, got {seeds}.")
    study, where, settings = load_study(name, results_dir, storage)
    if not settings:
        raise BadInput(f"study {where.name!r} was not made by scalesearch run.")
    coefficients = coefficients_of(study, where, alpha, beta, gamma)
    existing = stage.load_existing(where.name, cmp.STAGE, study._storage)
    if seeds is None:
        seeds = (existing.user_attrs["seeds"] if existing is not None
                 else max(MIN_RUNS, int(settings.get("seeds", 1))))
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    config = stored_config(where, device)
    identity = {"coefficients": list(coefficients), "seeds": seeds}
    meta = {**identity, "opponent": _opponent(study), "cost": config.cost,
            "margin": config.margin / 100,
            "identity": identity}
    points = cmp.plan_points(coefficients, phis, _counter(study, config), config.tolerance,
                             names)
    cstudy = stage.create_or_load(where.name, cmp.STAGE, study._storage, meta, points)
    return Comparison(where, study, cstudy, coefficients, phis, seeds)


def run_comparison(comparison: Comparison, device: str | None, reporter: Reporter) -> dict:
    """Train every network of the comparison that is not finished; returns compare.json's
    content. Ctrl-C or SIGTERM: finished networks are kept, `Interrupted` is raised."""
    from scalesearch.stages import compare as cmp
    from scalesearch.stages import stage

    config = stored_config(comparison.where, device)
    cstudy, folder = comparison.compare_study, comparison.where.folder
    exporting = Exporting(reporter, lambda: cmp.export(cstudy, folder))
    try:
        with sigterm_as_interrupt():
            if stage.pending(cstudy):
                data = load_data(config)
                objective = stage.StageObjective(config, data, cmp.STAGE, comparison.seeds,
                                                 exporting)
                stage.run_stage(cstudy, objective, exporting)
    except KeyboardInterrupt:
        cmp.export(cstudy, folder)
        raise Interrupted() from None
    return cmp.export(cstudy, folder)
