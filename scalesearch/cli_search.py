"""The search commands of the command line: `run`, `worker`, `show` and `plot`.

Like `scalesearch.cli`, each command checks its arguments, calls the library and prints;
heavy modules are imported inside the commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import typer

from scalesearch.errors import BadInput

ResultsOpt = typer.Option(Path("results"), "--results-dir",
                          help="Folder that holds one sub-folder per study.")
StorageOpt = typer.Option(None, "--storage", help="Database URL (postgresql://..., "
                          "mysql+pymysql://...) instead of the local journal file.")
HeartbeatOpt = typer.Option(30, "--heartbeat", help="Seconds between worker heartbeats "
                            "(database storages); a worker silent for twice this is dead.")
DeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda.")


# ---------------------------------------------------------------------------------------------
# progress


class ConsoleReporter:
    """Progress over trials and over steps of the current training, plus one line per trial."""

    def __init__(self, console, target: int, done: int, quiet: bool = False):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            console=console, transient=True, disable=quiet or not console.is_terminal,
        )
        self.trials = self.progress.add_task("candidates", total=target, completed=done,
                                             info="")
        self.steps = self.progress.add_task("training", total=1, info="", visible=False)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def trial_started(self, number, kind, spec, seeds):
        self.label = (f"trial {number} {kind}: d {spec.depth_mult:.2f} w {spec.width_mult:.2f} "
                      f"r {spec.resolution}px")

    def seed_started(self, number, seed, total_steps):
        self.progress.update(self.steps, total=total_steps, completed=0, visible=True,
                             description=f"{self.label} seed {seed}", info="")

    def step(self, step, total, loss):
        self.progress.update(self.steps, completed=step, info=f"loss {loss:.3f}")

    def trial_finished(self, trial):
        from optuna.trial import TrialState

        attrs = trial.user_attrs
        if attrs.get("surplus"):
            return
        self.progress.update(self.steps, visible=False)
        done = trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or "failure" in attrs
        if done:
            self.progress.advance(self.trials)
        if self.quiet:
            return
        self.console.print(trial_line(trial))

    def message(self, text):
        if not self.quiet:
            self.console.print(text)


def trial_line(trial) -> str:
    """One line per finished trial: number, kind, scale, FLOPs, accuracy."""
    attrs = trial.user_attrs
    head = f"trial {trial.number:>3} {attrs.get('kind', '?'):<10}"
    if "flops_ratio" in attrs:
        head += (f" alpha {attrs['alpha']:.3f} beta {attrs['beta']:.3f} "
                 f"gamma {attrs['gamma']:.3f}  d {attrs['depth_mult']:.2f} "
                 f"w {attrs['width_mult']:.2f} r {attrs['resolution']:>3}px  "
                 f"flops x{attrs['flops_ratio']:.2f}"
                 f"{'' if attrs.get('flops_matched', True) else ' (off budget)'}")
    state = trial.state.name.lower()
    if trial.value is not None:
        std = attrs.get("val_accuracy_std")
        spread = f" ± {std:.1%}" if std is not None else ""
        return f"{head}  val {trial.value:.1%}{spread} ({attrs.get('n_seeds', 1)} seeds)"
    reason = attrs.get("failure") or attrs.get("infeasible") or attrs.get("failure_reason")
    return f"{head}  {state}{': ' + reason if reason else ''}"


# ---------------------------------------------------------------------------------------------
# run and worker


def _default_name(config, study_file: Optional[Path]) -> str:
    stem = study_file.stem if study_file else config.dataset.split(":")[0]
    return f"{stem}-{config.budget:g}x"


def _resume_hint(name: str, results_dir: Path, storage: Optional[str]) -> str:
    where = f"--storage {storage}" if storage else f"--results-dir {results_dir}"
    return f"scalesearch run --name {name} {where} (with the same settings)"


def run(
    budget: Optional[str] = typer.Option(None, "--budget", help="FLOPs multiple over the base "
                                         "network, e.g. 2x (default 2x)."),
    study_file: Optional[Path] = typer.Option(None, "--study", help="Study file (TOML)."),
    name: Optional[str] = typer.Option(None, "--name", help="Study name (default: study file "
                                       "or data set, and budget, e.g. synthetic-2x)."),
    results_dir: Path = ResultsOpt,
    trials: Optional[int] = typer.Option(None, "--trials", help="Searched candidates beyond "
                                         "the baseline and the three corners."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Proxy epochs per training."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Trainings per candidate."),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="qmc | tpe | grid."),
    grid_step: Optional[float] = typer.Option(None, "--grid-step", help="Share step of the "
                                              "grid sampler, e.g. 0.25."),
    device: Optional[str] = DeviceOpt,
    dataset: Optional[str] = typer.Option(None, "--dataset", help="synthetic | cifar10 | "
                                          "cifar100 | imagefolder:PATH."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Data set folder."),
    base_resolution: Optional[int] = typer.Option(None, "--base-resolution",
                                                  help="Base network's resolution (px)."),
    base_depth: Optional[float] = typer.Option(None, "--base-depth",
                                               help="Base network depth, x B0."),
    base_width: Optional[float] = typer.Option(None, "--base-width",
                                               help="Base network width, x B0."),
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
    seed: Optional[int] = typer.Option(None, "--seed", help="Data split and sampler seed."),
    storage: Optional[str] = StorageOpt,
    heartbeat: int = HeartbeatOpt,
    workers: int = typer.Option(1, "--workers", help="Worker processes on this host."),
    workers_per_gpu: int = typer.Option(1, "--workers-per-gpu",
                                        help="With GPUs: workers per GPU."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress or per-trial lines."),
) -> None:
    """Search alpha, beta, gamma at one FLOPs budget; running it again resumes the study."""
    from scalesearch.runner import Where, check_name
    from scalesearch.study import build_config

    config = build_config(
        study_file, budget=budget, trials=trials, epochs=epochs, seeds=seeds, sampler=sampler,
        grid_step=grid_step, device=device, dataset=dataset, data_dir=data_dir,
        base_resolution=base_resolution, base_depth=base_depth, base_width=base_width,
        batch_size=batch_size, optimizer=optimizer, lr=lr, tolerance=tolerance, match=match,
        prune=prune, max_params=max_params, max_activations=max_activations,
        train_images=train_images, val_images=val_images, seed=seed,
    )
    if workers < 1 or workers_per_gpu < 1:
        raise BadInput(f"--workers and --workers-per-gpu must be at least 1, got {workers} "
                       f"and {workers_per_gpu}.")
    if heartbeat < 1:
        raise BadInput(f"--heartbeat must be at least 1 second, got {heartbeat}.")
    where = Where(check_name(name or _default_name(config, study_file)), results_dir, storage,
                  heartbeat)
    _run(where, config, workers, workers_per_gpu, quiet, create=True)


def worker(
    name: str = typer.Option(..., "--name", help="The study to join."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
    heartbeat: int = HeartbeatOpt,
    device: Optional[str] = DeviceOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress or per-trial lines."),
) -> None:
    """Join an existing study and train its candidates (one per process; start many)."""
    from scalesearch.runner import Where, check_name

    where = Where(check_name(name), results_dir, storage, heartbeat)
    config = _stored_config(where, device)
    _run(where, config, 1, 1, quiet, create=False)


def _stored_config(where, device: Optional[str]):
    """The configuration a study was created with, from its storage."""
    import dataclasses

    import optuna

    from scalesearch.search import open_storage
    from scalesearch.study import StudyConfig, check

    if where.storage is None and not (where.folder / "study.journal").exists():
        raise BadInput(f"no study named {where.name!r} under {str(where.results_dir)!r}; "
                       "start it with `scalesearch run --name NAME` first.")
    storage = open_storage(where.results_dir, where.name, where.storage, where.heartbeat)
    try:
        study = optuna.load_study(study_name=where.name, storage=storage)
    except KeyError:
        raise BadInput(f"no study named {where.name!r} in this storage; start it with "
                       "`scalesearch run --name NAME` first.") from None
    settings = study.user_attrs.get("settings")
    if not settings:
        raise BadInput(f"study {where.name!r} was not made by scalesearch run.")
    known = {f.name for f in dataclasses.fields(StudyConfig)}
    config = StudyConfig(**{k: v for k, v in settings.items() if k in known})
    if device is not None:
        config.device = device
    return check(config)


def _gpu_slots(workers_per_gpu: int) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each worker: one entry per GPU slot, or [None] without GPUs."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA means CPU workers
        count = 0
    if count == 0:
        return [None]
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    return [gpu for gpu in ids[:count] for _ in range(workers_per_gpu)]


def _run(where, config, workers: int, workers_per_gpu: int, quiet: bool, create: bool) -> None:
    import optuna
    from rich.console import Console

    from scalesearch.runner import export, open_study, sigterm_as_interrupt, write_run_files

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happened
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    console = Console(stderr=True, soft_wrap=True)
    study = open_study(where, config, create=create)
    if where.storage is None and create:
        write_run_files(where, config)
    console.print(f"study {where.name}: budget {config.budget:g}x, {config.dataset}, "
                  f"{config.epochs} epochs, {config.seeds} seed(s), sampler {config.sampler}; "
                  f"stored in {where.storage or where.folder / 'study.journal'}")
    slots = _gpu_slots(workers_per_gpu)
    spawn = workers > 1 or len(slots) > 1
    try:
        with sigterm_as_interrupt():
            if spawn:
                count = workers if workers > 1 else len(slots)
                _run_processes(study, where, config, count, slots, console, quiet)
            else:
                _run_here(study, where, config, console, quiet)
    except KeyboardInterrupt:
        export(study, where, config.budget)
        console.print("stopped: finished trials are saved; the interrupted one will be re-run. "
                      f"Resume with: {_resume_hint(where.name, where.results_dir, where.storage)}")
        raise typer.Exit(130) from None
    summary = export(study, where, config.budget)
    _print_summary(console, summary, where)


def _run_here(study, where, config, console, quiet: bool) -> None:
    from scalesearch.runner import export, load_data
    from scalesearch.search import done_count, run_worker

    data = load_data(config)
    target = study.user_attrs["target"]

    class Reporter(ConsoleReporter):
        def trial_finished(self, trial):
            super().trial_finished(trial)
            export(study, where, config.budget)  # files stay current after every trial

    with Reporter(console, target, done_count(study.get_trials()), quiet) as reporter:
        run_worker(study, config, data, reporter)


def _run_processes(study, where, config, count: int, slots, console, quiet: bool) -> None:
    """`count` worker processes, GPU slots assigned round-robin; progress from the storage."""
    from optuna.trial import TrialState

    from scalesearch.runner import export
    from scalesearch.search import done_count

    command = [sys.executable, "-m", "scalesearch", "worker", "--name", where.name,
               "--results-dir", str(where.results_dir), "--heartbeat", str(where.heartbeat),
               "--quiet"]
    if where.storage:
        command += ["--storage", where.storage]
    logs = where.folder if where.storage is None else where.results_dir / where.name
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(count):
        env = dict(os.environ)
        if slots[index % len(slots)] is not None:
            env["CUDA_VISIBLE_DEVICES"] = slots[index % len(slots)]
        log = open(logs / f"worker-{index}.log", "ab")  # noqa: SIM115 - closed below
        processes.append((subprocess.Popen(command, env=env, stdout=log, stderr=log), log))
    console.print(f"{count} workers started; their logs: {logs}/worker-N.log")
    seen: set[int] = set()
    try:
        while any(p.poll() is None for p, _ in processes):
            time.sleep(1.0)
            trials = study.get_trials(deepcopy=False)
            for t in trials:
                if t.number not in seen and t.state.is_finished():
                    seen.add(t.number)
                    if not quiet and not t.user_attrs.get("surplus"):
                        console.print(trial_line(t))
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if not quiet and console.is_terminal:
                console.print(f"{done_count(trials)}/{study.user_attrs['target']} done, "
                              f"{running} running", end="\r")
            export(study, where, config.budget)
    except KeyboardInterrupt:
        for p, _ in processes:
            if p.poll() is None:
                p.terminate()  # workers turn SIGTERM into a saved stop
        for p, _ in processes:
            p.wait()
        raise
    finally:
        for _, log in processes:
            log.close()
    failed = [p.returncode for p, _ in processes if p.returncode not in (0, None)]
    if failed:
        raise BadInput(f"{len(failed)} worker(s) stopped with an error (exit {failed[0]}); "
                       f"see {logs}/worker-N.log.")


def _print_summary(console, summary: dict, where) -> None:
    out = console
    best = summary.get("best")
    if best:
        out.print(f"best compound: alpha {best['alpha']:.3f}, beta {best['beta']:.3f}, gamma "
                  f"{best['gamma']:.3f} (d {best['depth_mult']:.2f}, w {best['width_mult']:.2f},"
                  f" r {best['resolution']}px, flops x{best['flops_ratio']:.2f}): "
                  f"val {best['val_accuracy']:.1%}")
    out.print(summary["verdict"]["text"])
    if where.storage is None or where.folder.exists():
        out.print(f"results: {where.folder}/ (trials.csv, summary.json); "
                  f"next: scalesearch plot {where.name}")


# ---------------------------------------------------------------------------------------------
# show and plot


def _latest_study(results_dir: Path) -> str:
    journals = sorted(results_dir.glob("*/study.journal"), key=lambda p: p.stat().st_mtime)
    if not journals:
        raise BadInput(f"no study under {str(results_dir)!r}; run `scalesearch run` first.")
    return journals[-1].parent.name


def _load(name: Optional[str], results_dir: Path, storage: Optional[str]):
    """(study, Where, settings) of a stored study, read-only use."""
    import optuna

    from scalesearch.runner import Where, check_name
    from scalesearch.search import open_storage

    if name is None:
        if storage:
            raise BadInput("with --storage, name the study: scalesearch show NAME --storage URL.")
        name = _latest_study(results_dir)
    where = Where(check_name(name), results_dir, storage)
    if storage is None and not (where.folder / "study.journal").exists():
        raise BadInput(f"no study named {name!r} under {str(results_dir)!r}.")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    backend = open_storage(results_dir, where.name, storage)
    try:
        study = optuna.load_study(study_name=where.name, storage=backend)
    except KeyError:
        raise BadInput(f"no study named {name!r} in this storage.") from None
    return study, where, study.user_attrs.get("settings", {})


def show(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """The trials and the verdict of a study, also while it is running."""
    import json

    from rich.console import Console
    from rich.table import Table

    from scalesearch.results import summarize, trial_rows

    study, where, settings = _load(name, results_dir, storage)
    trials = study.get_trials(deepcopy=False)
    summary = summarize(trial_rows(trials), settings.get("budget", float("nan")))
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    # Piped output is not cut to 80 columns: it is read by people and by grep alike.
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    table = Table(title=f"study {where.name} (budget {settings.get('budget', '?')}x)",
                  title_justify="left")
    for column in ("trial", "kind", "alpha", "beta", "gamma", "depth", "width", "res",
                   "flops x", "val acc", "seeds", "state", "note"):
        table.add_column(column, justify="left" if column in ("kind", "state", "note")
                         else "right")
    for t in trials:
        a = t.user_attrs
        if a.get("surplus"):
            continue

        def num(key: str, fmt: str, a: dict = a) -> str:
            return format(a[key], fmt) if a.get(key) is not None else ""

        acc = f"{t.value:.1%}" if t.value is not None else ""
        if t.value is not None and a.get("val_accuracy_std") is not None:
            acc += f" ± {a['val_accuracy_std']:.1%}"
        note = a.get("failure") or a.get("infeasible") or a.get("failure_reason") or ""
        if "rerun_of" in a:
            note = f"re-run of {a['rerun_of']} {note}".strip()
        table.add_row(str(t.number), a.get("kind", ""), num("alpha", ".3f"), num("beta", ".3f"),
                      num("gamma", ".3f"), num("depth_mult", ".2f"), num("width_mult", ".2f"),
                      num("resolution", "d"), num("flops_ratio", ".2f"), acc,
                      str(a.get("n_seeds", "")), t.state.name.lower(), note)
    console.print(table)
    console.print(summary["verdict"]["text"])


def plot(
    name: Optional[str] = typer.Argument(None, help="Study name (default: the latest)."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
) -> None:
    """Draw the study's accuracy-vs-FLOPs frontier (PNG and SVG) under results/<name>/plots/."""
    from scalesearch.plots import plot_frontier
    from scalesearch.results import summarize, trial_rows

    study, where, settings = _load(name, results_dir, storage)
    frame = trial_rows(study.get_trials(deepcopy=False))
    done = frame[frame["state"] == "complete"]
    if done.empty:
        raise BadInput(f"study {where.name!r} has no finished trials to plot yet.")
    budget = settings.get("budget")
    summary = summarize(frame, budget or float("nan"))
    title = (f"{settings.get('dataset', '?')}, budget {budget:g}x, {settings.get('epochs')} "
             f"epochs x {settings.get('seeds')} seed(s), base d {settings.get('base_depth')} "
             f"w {settings.get('base_width')}")
    best = summary["best"]["trial"] if summary["best"] else None
    paths = plot_frontier(frame, where.folder / "plots", title, budget=budget, best_trial=best)
    for path in paths:
        print(path)


def register(app: typer.Typer) -> None:
    """Add the search commands to the `scalesearch` app."""
    app.command()(run)
    app.command()(worker)
    app.command()(show)
    app.command()(plot)
