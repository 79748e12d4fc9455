"""The search commands of the command line: `run`, `worker`, `show` and `plot`.

Like `scalesearch.cli`, each command checks its arguments, calls the library and prints;
heavy modules are imported inside the commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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
WorkersOpt = typer.Option(None, "--workers", help="Worker processes on this host (default: "
                          "one per visible GPU, or 1 without GPUs).")
WorkersPerGpuOpt = typer.Option(1, "--workers-per-gpu", help="With GPUs and no --workers: "
                                "workers per GPU, for proxies too small to fill one.")


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
        if done and "duplicate_of" not in attrs:  # a duplicate does not count (search.py)
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
    # A trial whose worker died while recording it may hold only some of these.
    if all(k in attrs for k in ("alpha", "beta", "gamma", "depth_mult", "width_mult",
                                "resolution", "flops_ratio")):
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
    if "duplicate_of" in attrs:
        reason = f"same network as trial {attrs['duplicate_of']}, not trained"
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
    workers: Optional[int] = WorkersOpt,
    workers_per_gpu: int = WorkersPerGpuOpt,
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
    _check_workers(workers, workers_per_gpu, heartbeat, storage)
    where = Where(check_name(name or _default_name(config, study_file)), results_dir, storage,
                  heartbeat)
    _run(where, config, workers, workers_per_gpu, quiet, create=True)


def _check_workers(workers: Optional[int], workers_per_gpu: int, heartbeat: int,
                   storage: Optional[str]) -> None:
    if workers is not None and workers < 1:
        raise BadInput(f"--workers must be at least 1, got {workers}.")
    if workers_per_gpu < 1:
        raise BadInput(f"--workers-per-gpu must be at least 1, got {workers_per_gpu}.")
    if heartbeat < 1:
        raise BadInput(f"--heartbeat must be at least 1 second, got {heartbeat}.")
    if storage and storage.startswith("sqlite") and (workers or 1) > 1:
        raise BadInput("SQLite is not safe for several worker processes; leave out --storage "
                       "(the local journal file is) or use PostgreSQL or MySQL.")


def worker(
    name: str = typer.Option(..., "--name", help="The study to join."),
    results_dir: Path = ResultsOpt,
    storage: Optional[str] = StorageOpt,
    heartbeat: int = HeartbeatOpt,
    device: Optional[str] = DeviceOpt,
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Data set folder on this "
                                           "machine (default: the one the study was made with)."),
    workers: Optional[int] = WorkersOpt,
    workers_per_gpu: int = WorkersPerGpuOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No progress or per-trial lines."),
) -> None:
    """Join an existing study and train its candidates until it is complete."""
    from scalesearch.runner import Where, check_name

    _check_workers(workers, workers_per_gpu, heartbeat, storage)
    where = Where(check_name(name), results_dir, storage, heartbeat)
    config = _stored_config(where, device, data_dir)
    _run(where, config, workers, workers_per_gpu, quiet, create=False)


def _stored_config(where, device: Optional[str], data_dir: Optional[str] = None):
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
    if data_dir is not None:
        config.data_dir = data_dir
    return check(config)


def _gpu_slots(workers_per_gpu: int, device: str) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each worker slot: each visible GPU `workers_per_gpu` times, or
    [None] without GPUs (or with --device cpu)."""
    if device == "cpu":
        return [None]
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA means CPU workers
        count = 0
    if count == 0:
        return [None]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    return [gpu for gpu in ids[:count] for _ in range(workers_per_gpu)]


def _run(where, config, workers: Optional[int], workers_per_gpu: int, quiet: bool,
         create: bool) -> None:
    import optuna
    from rich.console import Console

    from scalesearch.runner import export, open_study, sigterm_as_interrupt, write_run_files
    from scalesearch.search import storage_failure

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happened
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    threading.excepthook = _quiet_storage_errors
    console = Console(stderr=True, soft_wrap=True)
    study = open_study(where, config, create=create)
    if where.storage is None and create:
        write_run_files(where, config)
    console.print(f"study {where.name}: budget {config.budget:g}x, {config.dataset}, "
                  f"{config.epochs} epochs, {config.seeds} seed(s), sampler {config.sampler}; "
                  f"stored in {where.storage or where.folder / 'study.journal'}")
    slots = _gpu_slots(workers_per_gpu, config.device)
    count = workers if workers is not None else len(slots)
    try:
        with sigterm_as_interrupt():
            if count > 1:
                _run_processes(study, where, config, count, slots, console, quiet)
            else:
                _run_here(study, where, config, console, quiet)
    except KeyboardInterrupt:
        export(study, where, config.budget)
        console.print("stopped: finished trials are saved; the interrupted one will be re-run. "
                      f"Resume with: {_resume_hint(where.name, where.results_dir, where.storage)}")
        raise typer.Exit(130) from None
    except Exception as err:
        reason = storage_failure(err)
        if reason is None:
            raise
        # One line, no traceback: what finished is in the database already.
        console.print(f"error: lost the storage {where.storage or where.folder}: {reason}; "
                      "every finished trial is stored there, run the same command again "
                      "when it is back.", markup=False)
        raise typer.Exit(1) from None
    summary = export(study, where, config.budget)
    _print_summary(console, summary, where)


def _quiet_storage_errors(args) -> None:
    """Threads (Optuna's heartbeat) that lose the database die quietly: the main thread meets
    the same error at its next call and reports it in one line."""
    from scalesearch.search import storage_failure

    if args.exc_value is None or storage_failure(args.exc_value) is None:
        threading.__excepthook__(args)


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


def _worker_command(where, config) -> list[str]:
    """The `scalesearch worker` command line of one worker process of `_run_processes`."""
    command = [sys.executable, "-m", "scalesearch", "worker", "--name", where.name,
               "--results-dir", str(where.results_dir), "--heartbeat", str(where.heartbeat),
               "--data-dir", config.data_dir, "--device", config.device, "--workers", "1",
               "--quiet"]
    if where.storage:
        command += ["--storage", where.storage]
    return command


def _run_processes(study, where, config, count: int, slots, console, quiet: bool) -> None:
    """`count` worker processes, GPU slots assigned round-robin; progress from the storage."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from scalesearch.runner import export
    from scalesearch.search import done_count

    logs = where.folder
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(count):
        env = dict(os.environ)
        slot = slots[index % len(slots)]
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot
        elif "OMP_NUM_THREADS" not in env:  # CPU workers share the cores instead of fighting
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
        log = open(logs / f"worker-{index}.log", "ab")  # noqa: SIM115 - closed below
        processes.append((subprocess.Popen(_worker_command(where, config), env=env,
                                           stdout=log, stderr=log), log))
    console.print(f"{count} workers started; their logs: {logs}/worker-N.log")
    index_of = {p.pid: i for i, (p, _) in enumerate(processes)}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        console=console, transient=True, disable=quiet or not console.is_terminal)
    overall = progress.add_task("candidates", total=study.user_attrs["target"])
    lanes = [progress.add_task(f"worker {i}: starting", total=None) for i in range(count)]
    seen: set[int] = set()
    try:
        with progress:
            while any(p.poll() is None for p, _ in processes):
                time.sleep(1.0)
                trials = study.get_trials(deepcopy=False)
                for t in trials:
                    if t.number not in seen and t.state.is_finished():
                        seen.add(t.number)
                        if not quiet and not t.user_attrs.get("surplus"):
                            console.print(trial_line(t))
                progress.update(overall, completed=done_count(trials))
                for i, text in enumerate(_lanes(trials, processes, index_of)):
                    progress.update(lanes[i], description=text)
                export(study, where, config.budget)
    except BaseException:  # Ctrl-C, SIGTERM or a failure here: no worker is left behind
        for p, _ in processes:
            if p.poll() is None:
                p.terminate()  # workers turn SIGTERM into a saved stop
        for p, _ in processes:
            p.wait()
        raise
    finally:
        for _, log in processes:
            log.close()
    _check_workers_ended(study, processes, logs, console)


def _lanes(trials, processes, index_of: dict[int, int]) -> list[str]:
    """One status text per worker process: the trial it trains, idle, or how it ended."""
    from optuna.trial import TrialState

    texts = [f"worker {i}: idle" for i in range(len(processes))]
    for t in trials:
        pid = str(t.user_attrs.get("worker", "")).split(":")[1:2]
        i = index_of.get(int(pid[0])) if pid and pid[0].isdigit() else None
        if t.state == TrialState.RUNNING and i is not None:
            texts[i] = f"worker {i}: trial {t.number} {t.user_attrs.get('kind', '')}"
    for i, (p, _) in enumerate(processes):
        if p.poll() is not None:
            texts[i] = f"worker {i}: ended (exit {p.returncode})"
    return texts


def _check_workers_ended(study, processes, logs, console) -> None:
    """After all workers ended: a warning for workers that died if the others completed the
    study, an error (exit 1) if the study is unfinished."""
    from optuna.trial import TrialState

    from scalesearch.search import done_count

    died = [f"worker {i} (exit {p.returncode})" for i, (p, _) in enumerate(processes)
            if p.returncode != 0]
    if not died:
        return
    trials = study.get_trials(deepcopy=False)
    open_trials = any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    if done_count(trials) >= study.user_attrs["target"] and not open_trials:
        console.print(f"warning: {', '.join(died)} stopped early; the other workers completed "
                      f"the study (see {logs}/worker-N.log).")
        return
    console.print(f"error: {', '.join(died)} stopped before the study was complete; see "
                  f"{logs}/worker-N.log, then run the same command again to resume.",
                  markup=False)
    raise typer.Exit(1)


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
    summary = summarize(trial_rows(trials), settings.get("budget", float("nan")),
                        settings.get("tolerance", 0.03))
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
    # Failed trials (a dead worker, an interrupt) point to the trial that re-runs them.
    rerun_as = {t.user_attrs["rerun_of"]: t.number for t in trials if "rerun_of" in t.user_attrs}
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
        if "duplicate_of" in a:
            note = f"same network as trial {a['duplicate_of']}, not trained"
        if t.number in rerun_as:
            note = f"{note}; re-run as {rerun_as[t.number]}".lstrip("; ")
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
    """Draw every figure the study's data supports (PNG and SVG) under results/<name>/plots/:
    frontier, search surface, history, timeline, parameter importances, and the scaling
    curves once `scalesearch compare` has run."""
    from scalesearch.figures import draw_study

    drawn = draw_study(name, results_dir, storage)
    for paths in drawn.figures.values():
        for path in paths:
            print(path)
    for figure, reason in drawn.skipped.items():
        print(f"not drawn: {figure}: {reason}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add the search commands to the `scalesearch` app."""
    app.command()(run)
    app.command()(worker)
    app.command()(show)
    app.command()(plot)

    from scalesearch.cli_compare import register as register_compare

    register_compare(app)
