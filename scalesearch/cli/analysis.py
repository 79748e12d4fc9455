"""The commands that come after a search: `compare`, `plot` and `report`.

Each checks its flags, calls one library function and prints; heavy modules are imported
inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from scalesearch.cli.options import ResultsOpt, StorageOpt, StudyDeviceOpt


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
    device: Optional[str] = StudyDeviceOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress or per-network lines."),
) -> None:
    """Compound vs depth-, width- and resolution-only scaling at matched FLOPs, per phi, on the
    test split; resumable like `run`. Writes results/<name>/compare.csv and compare.json."""
    from rich.console import Console

    from scalesearch.cli.console import ConsoleReporter
    from scalesearch.runs.comparison import prepare, run_comparison
    from scalesearch.runs.runner import Interrupted
    from scalesearch.stages.compare import CSV
    from scalesearch.stages.stage import finished, pending

    comparison = prepare(name, results_dir, storage, phi, seeds, alpha, beta, gamma, device)
    console = Console(stderr=True, soft_wrap=True)
    cstudy, where = comparison.compare_study, comparison.where
    a, b, g = comparison.coefficients
    header = (f"comparison {cstudy.study_name}: alpha {a:.3f}, beta {b:.3f}, gamma {g:.3f}, "
              f"phi {', '.join(f'{p:g}' for p in comparison.phis)}, {comparison.seeds} seed(s) "
              f"each, evaluated on the test split; {pending(cstudy)} network(s) to train")
    try:
        with ConsoleReporter(console, quiet,
                             counts=lambda t: t.state.name == "COMPLETE"
                             or "failure" in t.user_attrs) as reporter:
            reporter.study_opened(header, len(cstudy.user_attrs["points"]), finished(cstudy))
            summary = run_comparison(comparison, device, reporter)
    except Interrupted:
        console.print("stopped: finished networks are saved; the interrupted one will be "
                      f"re-run. Resume with: {comparison.resume}")
        raise typer.Exit(130) from None
    for verdict in summary["verdicts"]:
        console.print(verdict["text"])
    if summary["off_budget"]:
        console.print(f"{summary['off_budget']} strategy budget(s) could be neither matched "
                      "within the tolerance nor bracketed by two networks; they are not judged.")
    console.print(f"results: {where.folder / CSV}; next: scalesearch plot {where.name} and "
                  f"scalesearch report {where.name}")


def plot(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
) -> None:
    """Draw every figure the study's data supports (PNG and SVG) under results/<name>/plots/:
    frontier, search surface, history, timeline, parameter importances, and the scaling
    curves once `scalesearch compare` has run."""
    from scalesearch.report.figures import draw_study

    drawn = draw_study(name, results_dir, storage)
    for paths in drawn.figures.values():
        for path in paths:
            print(path)
    for figure, reason in drawn.skipped.items():
        print(f"not drawn: {figure}: {reason}", file=sys.stderr)


def report(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
) -> None:
    """Draw every figure and write results/<name>/report.md and report.html."""
    from scalesearch.report.document import write_report
    from scalesearch.report.figures import draw_study

    drawn = draw_study(name, results_dir, storage)
    for path in write_report(drawn):
        print(path)


def register(app: typer.Typer) -> None:
    """Add `compare`, `plot` and `report` to the `scalesearch` app."""
    app.command()(compare)
    app.command()(plot)
    app.command()(report)
