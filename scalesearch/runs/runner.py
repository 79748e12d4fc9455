"""Running a study: one worker in this process, or several worker processes, until it is done.

`run_study` is what `scalesearch run` and `scalesearch worker` call: it opens (or creates) the
study, writes the run files, trains here or in worker processes, and keeps ``trials.csv`` and
``summary.json`` current. An interrupt (Ctrl-C, SIGTERM) keeps what finished and ends in
`Interrupted`; a database that goes away ends in `StorageLost`; both after the files are
written. The command line turns these into one line and an exit status.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import threading
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from scalesearch.errors import BadInput
from scalesearch.runs.files import Where, export, write_run_files
from scalesearch.runs.loading import load_data
from scalesearch.runs.processes import (
    Monitor,
    cpu_workers,
    gpu_slots,
    measured_workers_per_gpu,
    run_processes,
)
from scalesearch.search.config import StudyConfig
from scalesearch.search.training import Reporter
from scalesearch.store.storage import storage_failure


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the study; finished trials are stored."""


class StorageLost(Exception):
    """The database went away; `reason` is its first line of error."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a scheduler's stop) behaves like Ctrl-C: finished work is kept."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_workers(workers: int | None, workers_per_gpu: int | None, heartbeat: int,
                  storage: str | None) -> None:
    """BadInput for worker settings that cannot work."""
    if workers is not None and workers < 1:
        raise BadInput(f"--workers must be at least 1, got {workers}.")
    if workers_per_gpu is not None and workers_per_gpu < 1:
        raise BadInput(f"--workers-per-gpu must be at least 1, got {workers_per_gpu}.")
    if heartbeat < 1:
        raise BadInput(f"--heartbeat must be at least 1 second, got {heartbeat}.")
    if storage and storage.startswith("sqlite") and (workers or 1) > 1:
        raise BadInput("SQLite is not safe for several worker processes; leave out --storage "
                       "(the local journal file is) or use PostgreSQL or MySQL.")


def default_name(config: StudyConfig, study_file: Path | None) -> str:
    """The study file's or data set's name, a base other than B0, the budget and a cost other
    than FLOPs, e.g. synthetic-2x, synthetic-resnet50-2x or synthetic-2x-time."""
    from scalesearch.net.family import DEFAULT_BASE

    stem = study_file.stem if study_file else config.dataset.split(":")[0]
    if config.base != DEFAULT_BASE and not study_file:
        stem += "-" + re.sub(r"[^A-Za-z0-9_]+", "-", config.base).strip("-")
    cost = "" if config.cost == "flops" else f"-{config.cost}"
    return f"{stem}-{config.budget:g}x{cost}"


def resume_hint(where: Where) -> str:
    """The command that resumes the study at `where`."""
    place = f"--storage {where.storage}" if where.storage else f"--results-dir {where.results_dir}"
    return f"scalesearch run --name {where.name} {place} (with the same settings)"


def open_study(where: Where, config: StudyConfig, create: bool = True):
    from scalesearch.search.plan import create_or_load
    from scalesearch.store.storage import open_storage

    storage = open_storage(where.results_dir, where.name, where.storage, where.heartbeat)
    return create_or_load(where.name, storage, config, create=create)


def _quiet_storage_errors(args) -> None:
    """Threads (Optuna's heartbeat) that lose the database die quietly: the main thread meets
    the same error at its next call and reports it in one line."""
    if args.exc_value is None or storage_failure(args.exc_value) is None:
        threading.__excepthook__(args)


def run_study(where: Where, config: StudyConfig, workers: int | None, workers_per_gpu: int | None,
              create: bool, reporter: Monitor) -> dict:
    """Train the study at `where` until it is complete; returns its summary.

    With one worker it trains in this process, otherwise in worker processes (one per GPU slot
    by default); either way `reporter` hears of it, first through `study_opened`."""
    import optuna

    from scalesearch.search.trials import done_count

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happened
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    threading.excepthook = _quiet_storage_errors
    study = open_study(where, config, create=create)
    if where.storage is None and create:
        write_run_files(where, config)
    # Without --workers-per-gpu, how many trainings share a GPU is measured on the study's base
    # network, and only when there are GPUs to share and --workers does not fix the count.
    measure = None if workers is not None else (lambda: measured_workers_per_gpu(config))
    slots = gpu_slots(workers_per_gpu, config.device, measure)
    # Without GPUs, one worker per core (up to MAX_CPU_WORKERS), each with one thread.
    count = (workers if workers is not None
             else len(slots) if slots != [None] else cpu_workers())
    reporter.study_opened(
        f"study {where.name}: {config.base} (d {config.base_depth:g}, w "
        f"{config.base_width:g}), budget {config.budget:g}x {config.cost}, {config.dataset}, "
        f"{config.epochs} epochs, {config.seeds} seed(s), sampler {config.sampler}; stored in "
        f"{where.storage or where.folder / 'study.journal'}",
        study.user_attrs["target"], done_count(study.get_trials(deepcopy=False)))
    try:
        with sigterm_as_interrupt():
            if count > 1:
                run_processes(study, where, config, count, slots, reporter)
            else:
                _run_here(study, where, config, reporter)
    except KeyboardInterrupt:
        export(study, where)
        raise Interrupted() from None
    except Exception as err:
        reason = storage_failure(err)
        if reason is None:
            raise
        raise StorageLost(reason) from None  # what finished is in the database already
    return export(study, where)


class Exporting(Reporter):
    """`inner`, plus `export()` after every finished trial, so the files stay current."""

    def __init__(self, inner: Reporter, export: Callable[[], object]):
        self.inner, self.export = inner, export

    def trial_started(self, number, kind, spec, seeds):
        self.inner.trial_started(number, kind, spec, seeds)

    def seed_started(self, number, seed, total_steps):
        self.inner.seed_started(number, seed, total_steps)

    def step(self, step, total, loss):
        self.inner.step(step, total, loss)

    def trial_finished(self, trial):
        self.inner.trial_finished(trial)
        self.export()

    def message(self, text):
        self.inner.message(text)


def _run_here(study, where: Where, config: StudyConfig, reporter: Reporter) -> None:
    """The search, then its confirmation, in this process."""
    from scalesearch.search.worker import run_worker, search_complete

    data = load_data(config)
    exporting = Exporting(reporter, lambda: export(study, where))
    run_worker(study, config, data, exporting)
    if search_complete(study):
        confirm_search(study, where, config, data, exporting)
        train_fidelity(study, where, config, data, reporter)


def confirm_search(study, where: Where, config: StudyConfig, data, reporter: Reporter) -> None:
    """Plan the confirmation of a complete search (once, whoever comes first) and train what
    it still lacks."""
    from scalesearch.search.config import confirm_costs
    from scalesearch.search.costs import CostCounter
    from scalesearch.stages import confirm, stage
    from scalesearch.verdict.results import trial_rows

    confirmation = stage.load_existing(where.name, confirm.STAGE, study._storage)
    if confirmation is None:
        planned = confirm.plan(trial_rows(study.get_trials(deepcopy=False)),
                               config.confirm_seeds, config.margin / 100)
        if planned is None:
            reporter.message("nothing to confirm: the search has no compound candidate or no "
                             "single dimension at the budget")
            return
        meta, points = planned
        for cost in confirm_costs(config):  # the same question at equal activations or time
            counter = CostCounter.for_data(dataclasses.replace(config, cost=cost), data)
            points += confirm.plan_cost(meta, cost, counter, config.budget, config.tolerance)
        confirmation = stage.create_or_load(where.name, confirm.STAGE, study._storage, meta,
                                            points)
    if stage.pending(confirmation):
        reporter.message(f"confirmation: {stage.pending(confirmation)} network(s) on "
                         f"{confirmation.user_attrs['seeds']} fresh seeds each, judged on the "
                         "test split")
    objective = stage.StageObjective(config, data, confirm.STAGE,
                                     confirmation.user_attrs["seeds"], reporter)
    stage.run_stage(confirmation, objective, reporter)


def train_fidelity(study, where: Where, config: StudyConfig, data, reporter: Reporter) -> None:
    """Train the waiting points of the fidelity stage, once `scalesearch fidelity` has planned
    it (its files are rewritten by that command, `show`, `report` and the end of `worker`)."""
    from scalesearch.stages import fidelity, stage

    fstudy = stage.load_existing(where.name, fidelity.STAGE, study._storage)
    if fstudy is None or not stage.pending(fstudy):
        return
    reporter.message(f"fidelity: {stage.pending(fstudy)} network(s) at longer training, judged "
                     "on the test split")
    objective = fidelity.FidelityObjective(config, data, fstudy.user_attrs["seeds"], reporter)
    stage.run_stage(fstudy, objective, reporter)
