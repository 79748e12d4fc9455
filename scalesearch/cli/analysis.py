"""The commands that come after a search: `compare`, `fidelity`, `plot` and `report`.

Each checks its flags, calls one library function and prints; heavy modules are imported
inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from scalesearch.cli.options import (
    HeartbeatOpt,
    ResultsOpt,
    StorageOpt,
    StudyDeviceOpt,
    WorkersOpt,
    WorkersPerGpuOpt,
)


def compare(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    phi: str = typer.Option(..., "--phi", help="Comma-separated phis, e.g. 1,2,3: the compound "
                            "network costs (alpha*beta^2*gamma^2)^phi x the base's FLOPs."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Trainings per network "
                                        "(default: the study's seeds, at least 3)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Depth coefficient "
                                          "(default: the study's best)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="Width coefficient."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="Resolution coefficient."),
    strategies: Optional[str] = typer.Option(
        None, "--strategies", help="Comma-separated: compound, depth, width, resolution, "
        "fast:A (Dollar et al.'s family, e.g. fast:0.8) \\[default: "
        "compound,depth,width,resolution]"),
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

    comparison = prepare(name, results_dir, storage, phi, seeds, alpha, beta, gamma, device,
                         strategies)
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


def fidelity(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    epochs: str = typer.Option(..., "--epochs", help="Comma-separated longer schedules: "
                               "multiples of the study's proxy epochs (2x) or epochs (12)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Trainings per network "
                                        "(default: the confirmation's)."),
    extremes: Optional[int] = typer.Option(None, "--extremes", help="Also train the k best "
                                           "and k worst other compound candidates of the "
                                           "search (default 2, or what the stage has)."),
    max_hours: float = typer.Option(24.0, "--max-hours", help="Refuse a plan estimated to need "
                                    "more hours of training (from the study's measured "
                                    "seconds per epoch)."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
    device: Optional[str] = StudyDeviceOpt,
    workers: Optional[int] = WorkersOpt,
    workers_per_gpu: int = WorkersPerGpuOpt,
    heartbeat: int = HeartbeatOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress or per-network lines."),
) -> None:
    """Does the verdict hold at longer training? Trains the study's finalists again at each
    schedule on fresh seeds, judged on the test split; resumable like `run`. Writes
    results/<name>/fidelity.csv and fidelity.json."""
    from rich.console import Console

    from scalesearch.cli.console import ConsoleReporter, trial_line
    from scalesearch.runs.fidelity import prepare, run_fidelity
    from scalesearch.runs.processes import WorkersFailed
    from scalesearch.runs.runner import Interrupted, check_workers
    from scalesearch.stages.fidelity import SUMMARY
    from scalesearch.stages.stage import finished, pending

    check_workers(workers, workers_per_gpu, heartbeat, storage)
    fid = prepare(name, results_dir, storage, epochs, seeds, extremes, max_hours, heartbeat)
    console = Console(stderr=True, soft_wrap=True)
    header = (f"fidelity {fid.stage.study_name}: {', '.join(map(str, fid.schedules))} epochs "
              f"against the proxy's {fid.proxy_epochs}, {fid.seeds} seed(s) per network, "
              f"{fid.extremes} best and worst other candidate(s), judged on the test split; "
              f"{pending(fid.stage)} network(s) to train, about {fid.seconds / 3600:.2f} h")
    try:
        with ConsoleReporter(console, quiet,
                             counts=lambda t: t.state.name == "COMPLETE"
                             or "failure" in t.user_attrs,
                             line=lambda t: f"{t.user_attrs.get('epochs')} epochs: "
                             f"{trial_line(t)}") as reporter:
            reporter.study_opened(header, len(fid.stage.user_attrs["points"]),
                                  finished(fid.stage))
            summary = run_fidelity(fid, device, workers, workers_per_gpu, reporter)
    except Interrupted:
        console.print("stopped: finished networks are saved; the interrupted one will be "
                      f"re-run. Resume with: {fid.resume}")
        raise typer.Exit(130) from None
    except WorkersFailed as failed:
        console.print(f"error: {failed}", markup=False)
        raise typer.Exit(1) from None
    for s in summary["schedules"]:
        console.print(f"{s['epochs']} epochs: {s['verdict']['text']}", markup=False)
    console.print(summary["text"], markup=False)
    console.print(f"results: {fid.where.folder / SUMMARY}; next: scalesearch report "
                  f"{fid.where.name}")


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
    """Add `compare`, `fidelity`, `plot` and `report` to the `scalesearch` app."""
    app.command()(compare)
    app.command()(fidelity)
    app.command()(plot)
    app.command()(report)
