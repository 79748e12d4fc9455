"""The commands that come after a search: `compare` and `report`.

Like `scalesearch.cli_search`, each command checks its arguments, calls the library and
prints; heavy modules are imported inside the commands.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from scalesearch.cli_search import ConsoleReporter, DeviceOpt, ResultsOpt, StorageOpt
from scalesearch.errors import BadInput


def compare_line(trial) -> str:
    """One line per finished network of a comparison: phi, kind, scale, FLOPs, test accuracy."""
    attrs = trial.user_attrs
    head = f"phi {attrs.get('phi', 0):<4g} {attrs.get('kind', '?'):<10}"
    if "flops_ratio" in attrs:
        head += (f" d {attrs['depth_mult']:.2f} w {attrs['width_mult']:.2f} "
                 f"r {attrs['resolution']:>3}px  flops x{attrs['flops_ratio']:.2f}"
                 f"{'' if attrs.get('flops_matched', True) else ' (off the compound FLOPs)'}")
    if trial.value is not None:
        std = attrs.get("test_accuracy_std")
        spread = f" ± {std:.1%}" if std is not None else ""
        return f"{head}  test {trial.value:.1%}{spread} ({attrs.get('n_seeds', 1)} seeds)"
    reason = attrs.get("failure") or attrs.get("failure_reason")
    return f"{head}  {trial.state.name.lower()}{': ' + reason if reason else ''}"


def _coefficients(study, where, alpha, beta, gamma) -> tuple[float, float, float]:
    """--alpha/--beta/--gamma, or the study's best compound candidate."""
    from scalesearch.compare import check_coefficients
    from scalesearch.results import summarize, trial_rows

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
    best = summarize(frame, float("nan"))["best"]
    if best is None:
        raise BadInput(f"study {where.name!r} has no finished compound candidate to take "
                       "alpha, beta and gamma from; give --alpha, --beta and --gamma.")
    return best["alpha"], best["beta"], best["gamma"]


def compare(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    phi: str = typer.Option(..., "--phi", help="Comma-separated phis, e.g. 1,2,3: the compound "
                            "network costs (alpha*beta^2*gamma^2)^phi x the base's FLOPs."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Trainings per network "
                                        "(default: the study's seeds, at least 2)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Depth coefficient "
                                          "(default: the study's best)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="Width coefficient."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="Resolution coefficient."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
    device: Optional[str] = DeviceOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress or per-network lines."),
) -> None:
    """Compound vs depth-, width- and resolution-only scaling at matched FLOPs, per phi, on the
    test split; resumable like `run`. Writes results/<name>/compare.csv and compare.json."""
    from rich.console import Console

    from scalesearch import compare as cmp
    from scalesearch.cli_search import _load, _stored_config
    from scalesearch.runner import load_data, sigterm_as_interrupt

    phis = cmp.parse_phis(phi)
    if seeds is not None and seeds < 1:
        raise BadInput(f"--seeds must be at least 1, got {seeds}.")
    study, where, settings = _load(name, results_dir, storage)
    if not settings:
        raise BadInput(f"study {where.name!r} was not made by scalesearch run.")
    config = _stored_config(where, device)
    coefficients = _coefficients(study, where, alpha, beta, gamma)
    existing = cmp.load_existing(where.name, study._storage)
    if seeds is None:
        seeds = (existing.user_attrs["seeds"] if existing is not None
                 else max(2, int(settings.get("seeds", 1))))
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    cstudy = cmp.create_or_load(where.name, study._storage, settings, coefficients, seeds, phis)
    folder = where.folder
    console = Console(stderr=True, soft_wrap=True)
    a, b, g = coefficients
    console.print(f"comparison {cstudy.study_name}: alpha {a:.3f}, beta {b:.3f}, gamma {g:.3f}, "
                  f"phi {', '.join(f'{p:g}' for p in phis)}, {seeds} seed(s) each, evaluated "
                  f"on the test split; {cmp.pending(cstudy)} network(s) to train")
    target = len(cstudy.user_attrs["points"])

    class Reporter(ConsoleReporter):
        def trial_finished(self, trial):
            from optuna.trial import TrialState

            self.progress.update(self.steps, visible=False)
            if trial.state == TrialState.COMPLETE or "failure" in trial.user_attrs:
                self.progress.advance(self.trials)
            if not self.quiet:
                self.console.print(compare_line(trial))
            cmp.export(cstudy, folder)  # the files stay current after every network

    try:
        with sigterm_as_interrupt():
            if cmp.pending(cstudy):
                data = load_data(config)
                with Reporter(console, target, cmp.finished(cstudy), quiet) as reporter:
                    cmp.run_compare(cstudy, config, data, coefficients, seeds, reporter)
    except KeyboardInterrupt:
        cmp.export(cstudy, folder)
        console.print("stopped: finished networks are saved; the interrupted one will be "
                      f"re-run. Resume with: scalesearch compare {where.name} --phi {phi} "
                      f"--seeds {seeds}")
        raise typer.Exit(130) from None
    summary = cmp.export(cstudy, folder)
    for verdict in summary["verdicts"]:
        console.print(verdict["text"])
    if summary["off_budget"]:
        console.print(f"{summary['off_budget']} single-dimension network(s) could not be brought "
                      "within the tolerance of the compound FLOPs (rounding); they are flagged "
                      "flops_matched = false.")
    console.print(f"results: {folder / cmp.CSV}; next: scalesearch plot {where.name} and "
                  f"scalesearch report {where.name}")


def report(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
) -> None:
    """Draw every figure and write results/<name>/report.md and report.html."""
    from scalesearch.figures import draw_study
    from scalesearch.report import write_report

    drawn = draw_study(name, results_dir, storage)
    for path in write_report(drawn):
        print(path)


def register(app: typer.Typer) -> None:
    """Add `compare` and `report` to the `scalesearch` app."""
    app.command()(compare)
    app.command()(report)
