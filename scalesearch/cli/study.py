"""The commands of a search: `run`, `worker` and `show`.

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


def run(  # long: one option per study field, then six lines of body
    budget: Optional[str] = typer.Option(None, "--budget", help="Multiple of the base "
                                         "network's cost, e.g. 2x (default 2x)."),
    cost: Optional[str] = typer.Option(None, "--cost", help="flops (default) | activations | "
                                       "time: what the budget counts and candidates are "
                                       "matched in."),
    study_file: Optional[Path] = typer.Option(None, "--study", help="Study file (TOML)."),
    name: Optional[str] = typer.Option(None, "--name", help="Study name (default: study file "
                                       "or data set, and budget, e.g. synthetic-2x)."),
    results_dir: Path = ResultsOpt,
    trials: Optional[int] = typer.Option(None, "--trials", help="Searched candidates beyond "
                                         "the baseline and the three corners."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Proxy epochs per training."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Trainings per candidate."),
    confirm_seeds: Optional[int] = typer.Option(None, "--confirm-seeds", help="Fresh "
                                                "trainings per network of the confirmation."),
    confirm_costs: Optional[str] = typer.Option(None, "--confirm-costs", help="Further costs "
                                                "to confirm at, e.g. activations,time."),
    margin: Optional[float] = typer.Option(None, "--margin", help="Equivalence margin of the "
                                           "verdict, accuracy points (default 1)."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="qmc | tpe | grid."),
    grid_step: Optional[float] = typer.Option(None, "--grid-step", help="Share step of the "
                                              "grid sampler, e.g. 0.25."),
    device: Optional[str] = StudyDeviceOpt,
    dataset: Optional[str] = typer.Option(None, "--dataset", help="synthetic | cifar10 | "
                                          "cifar100 | imagefolder:PATH."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Data set folder."),
    base_resolution: Optional[int] = typer.Option(None, "--base-resolution",
                                                  help="Base network's resolution (px)."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Image folders: "
                                             "stored side in px (32..1024); base default "
                                             "round(N * 224 / 256)."),
    max_resident_gb: Optional[float] = typer.Option(None, "--max-resident-gb", help="Most "
                                                    "image data (GB) on the device; beyond, "
                                                    "stream from disk (0: always)."),
    base: Optional[str] = typer.Option(None, "--base", help="Family to scale: efficientnet-b0 "
                                       "(default), resnet50, mobilenetv2, mobilenetv1 or "
                                       "package.module:attribute."),
    base_depth: Optional[float] = typer.Option(None, "--base-depth",
                                               help="Base network depth, x the family's."),
    base_width: Optional[float] = typer.Option(None, "--base-width",
                                               help="Base network width, x the family's."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd | rmsprop."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate."),
    tolerance: Optional[float] = typer.Option(None, "--tolerance", help="Allowed relative "
                                              "FLOPs distance from the budget (0.03)."),
    match: Optional[bool] = typer.Option(None, "--match/--no-match", help="Solve each "
                                         "candidate's scale to the budget, or reject misses."),
    prune: Optional[bool] = typer.Option(None, "--prune/--no-prune",
                                         help="Median pruning of compound candidates."),
    max_params: Optional[int] = typer.Option(None, "--max-params"),
    max_activations: Optional[int] = typer.Option(None, "--max-activations"),
    train_images: Optional[int] = typer.Option(None, "--train-images",
                                               help="Use only this many training images."),
    val_images: Optional[int] = typer.Option(None, "--val-images",
                                             help="Use only this many validation images."),
    test_images: Optional[int] = typer.Option(None, "--test-images",
                                              help="Use only this many test images."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Data split and sampler seed."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile "
                                           "each training with CUDA graphs (default: on CUDA)."),
    storage: Optional[str] = StorageOpt,
    heartbeat: int = HeartbeatOpt,
    workers: Optional[int] = WorkersOpt,
    workers_per_gpu: Optional[int] = WorkersPerGpuOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress or per-trial lines."),
) -> None:
    """Search alpha, beta, gamma at one FLOPs budget; running it again resumes the study."""
    from scalesearch.runs.files import Where, check_name
    from scalesearch.runs.runner import check_workers, default_name
    from scalesearch.search.config import FIELDS, build_config

    flags = {key: value for key, value in locals().items() if key in FIELDS}
    config = build_config(study_file, **flags)
    check_workers(workers, workers_per_gpu, heartbeat, storage)
    where = Where(check_name(name or default_name(config, study_file)), results_dir, storage,
                  heartbeat)
    _run(where, config, workers, workers_per_gpu, quiet, create=True)


def worker(
    name: str = typer.Option(..., "--name", help="The study to join."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
    heartbeat: int = HeartbeatOpt,
    device: Optional[str] = StudyDeviceOpt,
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Data set folder on this "
                                           "machine (default: the one the study was made with)."),
    workers: Optional[int] = WorkersOpt,
    workers_per_gpu: Optional[int] = WorkersPerGpuOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress or per-trial lines."),
) -> None:
    """Join an existing study and train its candidates until it is complete."""
    from scalesearch.runs.files import Where, check_name
    from scalesearch.runs.loading import stored_config
    from scalesearch.runs.runner import check_workers

    check_workers(workers, workers_per_gpu, heartbeat, storage)
    where = Where(check_name(name), results_dir, storage, heartbeat)
    config = stored_config(where, device, data_dir)
    _run(where, config, workers, workers_per_gpu, quiet, create=False)


def _run(where, config, workers, workers_per_gpu, quiet: bool, create: bool) -> None:
    """`run_study` with progress on stderr; its stops become one line and an exit status."""
    from rich.console import Console

    from scalesearch.cli.console import ConsoleReporter
    from scalesearch.runs.processes import WorkersFailed
    from scalesearch.runs.runner import Interrupted, StorageLost, resume_hint, run_study

    console = Console(stderr=True, soft_wrap=True)
    try:
        with ConsoleReporter(console, quiet) as reporter:
            summary = run_study(where, config, workers, workers_per_gpu, create, reporter)
    except Interrupted:
        console.print("stopped: finished trials are saved; the interrupted one will be re-run. "
                      f"Resume with: {resume_hint(where)}")
        raise typer.Exit(130) from None
    except StorageLost as lost:
        console.print(f"error: lost the storage {where.storage or where.folder}: {lost.reason}; "
                      "every finished trial is stored there, run the same command again "
                      "when it is back.", markup=False)
        raise typer.Exit(1) from None
    except WorkersFailed as failed:
        console.print(f"error: {failed}", markup=False)
        raise typer.Exit(1) from None
    _print_summary(console, summary, where)


def _print_summary(console, summary: dict, where) -> None:
    from scalesearch.cli.console import strategy_line

    console.print(summary["verdict"]["text"], markup=False)  # the answer first
    best = summary.get("best")
    if best:
        console.print(f"best compound: {strategy_line(best, 'val')}")
    for verdict in summary.get("verdicts_by_cost", {}).values():
        if verdict.get("secondary"):
            console.print(verdict["text"], markup=False)
    from scalesearch.runs.fidelity import fidelity_line

    line = fidelity_line(where, summary)  # the verdict at longer training, or how to check it
    if line:
        console.print(line, markup=False)
    if where.storage is None or where.folder.exists():
        console.print(f"results: {where.folder}/ (trials.csv, confirm.csv, summary.json); "
                      f"next: scalesearch plot {where.name}")


def show(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """The trials and the verdict of a study, also while it is running."""
    import json

    from rich.console import Console

    from scalesearch.cli.console import trials_table
    from scalesearch.runs.files import study_summary
    from scalesearch.runs.loading import load_study

    study, where, settings = load_study(name, results_dir, storage)
    trials = study.get_trials(deepcopy=False)
    summary, _ = study_summary(study, where)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    # Piped output is not cut to 80 columns: it is read by people and by grep alike.
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    console.print(summary["verdict"]["text"], markup=False)  # the answer first
    budget = settings.get("budget")
    console.print(trials_table(trials, f"study {where.name} (budget "
                                       f"{'?' if budget is None else format(budget, 'g')}x)"))
    for verdict in summary.get("verdicts_by_cost", {}).values():
        if verdict.get("secondary"):
            console.print(verdict["text"], markup=False)
    if "confirmation" in summary:
        from scalesearch.runs.fidelity import status_text

        console.print(status_text(study, where, settings), markup=False)


def register(app: typer.Typer) -> None:
    """Add `run`, `worker` and `show` to the `scalesearch` app."""
    app.command()(run)
    app.command()(worker)
    app.command()(show)

