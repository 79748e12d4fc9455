"""The search: an Optuna study over the constraint surface, run by one or more workers.

A study is one Optuna study whose trials are candidates:

- the plan, enqueued once by the process that creates the study: the baseline (the base
  network, 1x), the three single-dimension corners (depth, width, resolution only) and, for
  the grid sampler, the grid points; workers pop these before the sampler proposes anything;
- sampled candidates (qmc, tpe) until `target` candidates are done.

Every candidate except the baseline is a direction on the surface (Optuna parameters
``depth_share`` and ``width_fraction``, see `scalesearch.space`), brought to the budget in
measured FLOPs (`scalesearch.matching`) before training, and trained `seeds` times (the
baseline at least twice); the trial's value is the mean validation accuracy. Per-seed results
are stored in the trial's user attribute ``runs`` as they finish, so a re-run trial skips the
seeds already trained.

Resumption and dead workers: a trial interrupted by Ctrl-C or SIGTERM enqueues its own re-run
before Optuna marks it failed; a worker that died without a word (SIGKILL, power loss) is found
by the others: with a database storage through Optuna's heartbeats, with the local journal
file through its process id on this host. Whoever manages to mark the dead trial failed, and
only that process, enqueues its re-run, so nothing is trained twice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from scalesearch.errors import BadInput
from scalesearch.matching import Match, match_budget, nominal_match
from scalesearch.results import dropped
from scalesearch.scaling import NetworkSpec, scale_network
from scalesearch.space import (
    CORNERS,
    Direction,
    direction_from_params,
    grid_directions,
    params_from_direction,
)
from scalesearch.study import IDENTITY, StudyConfig

JOURNAL_FILE = "study.journal"
HEARTBEAT_SECONDS = 30  # database storages: a worker silent for twice this is dead
POLL_SECONDS = 2.0  # how often an idle worker looks for work others left behind
PLAN_WAIT_SECONDS = 60.0  # how long a joining worker waits for the creator to enqueue the plan


class TrainingFailed(Exception):
    """Every seed of a candidate failed (diverged or ran out of memory); not re-run."""


class Surplus(Exception):
    """A worker drew a trial after the plan was complete; the trial is dropped."""


# A sampled point whose matched network equals one already trained or training is not trained
# again (on small proxies many directions round to the same network); it is pruned with
# ``duplicate_of`` and does not count towards the target. After this many in a row a worker
# stops: the surface has no more distinct networks at this base.
MAX_DUPLICATES_IN_A_ROW = 12


# ---------------------------------------------------------------------------------------------
# storage


def journal_path(results_dir: Path, name: str) -> Path:
    return results_dir / name / JOURNAL_FILE


def storage_url(results_dir: Path, name: str, storage: str | None) -> str:
    """The URL `optuna.load_study` and `optuna-dashboard` open for this study."""
    if storage:
        return storage
    return str(journal_path(results_dir, name))


def open_storage(results_dir: Path, name: str, storage: str | None,
                 heartbeat: int = HEARTBEAT_SECONDS) -> optuna.storages.BaseStorage:
    """The study's storage: a journal file under results/<name>/, or the database at
    `storage` (PostgreSQL, MySQL, SQLite URLs) with heartbeats. BadInput if it cannot be opened."""
    if storage:
        return _open_database(storage, heartbeat)
    folder = results_dir / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInput(
            f"cannot create the results folder {str(folder)!r}: {err.strerror or err}; "
            "choose another with --results-dir."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(
            f"the results folder {str(folder)!r} is not writable; choose another with "
            "--results-dir."
        )
    path = folder / JOURNAL_FILE
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise BadInput(f"the study file {str(path)!r} is not readable and writable.")
    from optuna.storages.journal import JournalFileBackend

    try:
        if path.exists():
            _check_journal(path)
        journal = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        journal.get_all_studies()
    except Exception as err:  # noqa: BLE001 - a corrupted journal fails in many ways
        raise BadInput(
            f"the study file {str(path)!r} is corrupted or not an Optuna journal "
            f"({type(err).__name__}); it was left as it is."
        ) from None
    return journal


def storage_failure(err: BaseException) -> str | None:
    """The first line of the database error behind `err` (connection lost, server gone), or
    None when `err` has nothing to do with the database."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    seen = err
    while seen is not None and sqlalchemy_exc is not None:
        if isinstance(seen, (sqlalchemy_exc.OperationalError, sqlalchemy_exc.InterfaceError)):
            text = str(getattr(seen, "orig", None) or seen).strip()
            return text.splitlines()[0] if text else type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    return None


def _check_journal(path: Path) -> None:
    """Raise ValueError unless every complete line of the journal is a JSON object (a last line
    without its newline is a write cut short by a crash; Optuna skips it, and so do we)."""
    with open(path, "rb") as handle:
        for line in handle:
            if line.endswith(b"\n") and line.strip() and not isinstance(json.loads(line), dict):
                raise ValueError("not a journal entry")


def _open_database(url: str, heartbeat: int) -> optuna.storages.RDBStorage:
    import sqlalchemy.exc

    if "://" not in url:
        raise BadInput(
            f"storage {url!r} is not a database URL; use for example "
            "postgresql://user@host:5432/db or mysql+pymysql://user@host/db."
        )
    driver_url = url
    if url.startswith(("postgresql://", "postgres://")):
        # The driver we install (psycopg 3); SQLAlchemy before 2.1 would look for psycopg2.
        driver_url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                driver_url,
                engine_kwargs={"pool_pre_ping": True},
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=enqueue_rerun,
            )
    except (sqlalchemy.exc.ArgumentError, ValueError) as err:
        raise BadInput(f"storage URL {url!r} cannot be parsed: {err}.") from None
    except ImportError as err:  # Optuna wraps the driver's ModuleNotFoundError
        missing = getattr(err.__cause__, "name", None) or getattr(err, "name", None)
        raise BadInput(
            f"storage URL {url!r} needs the Python package {missing!r}; pip install it."
            if missing else f"storage URL {url!r} names a database driver that is not "
            "installed."
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise BadInput(f"cannot reach the storage {url!r}: {reason}.") from None


# ---------------------------------------------------------------------------------------------
# the plan


def plan(config: StudyConfig) -> list[tuple[dict, dict]]:
    """(params, user_attrs) of the fixed candidates, in the order they are trained."""
    points: list[tuple[dict, dict]] = [({}, {"kind": "baseline"})]
    for kind, direction in CORNERS.items():
        points.append((params_from_direction(direction), {"kind": kind}))
    if config.sampler == "grid":
        for direction in grid_directions(config.grid_step)[: config.trials]:
            points.append((params_from_direction(direction), {"kind": "compound"}))
    return points


def target_count(config: StudyConfig) -> int:
    """How many candidates the study trains: the baseline, the corners and the searched ones."""
    if config.sampler == "grid":
        return len(plan(config))
    return 1 + len(CORNERS) + config.trials


def make_sampler(config: StudyConfig, finished: int) -> optuna.samplers.BaseSampler:
    if config.sampler == "qmc":
        # Optuna numbers QMC samples through the storage, so a resumed study continues the
        # sequence instead of replaying it.
        return optuna.samplers.QMCSampler(seed=config.seed, scramble=True,
                                          warn_independent_sampling=False,
                                          warn_asynchronous_seeding=False)
    if config.sampler == "tpe":
        # The seed moves with the study's progress and the process, so a resumed or parallel
        # worker does not replay the first worker's startup points.
        return optuna.samplers.TPESampler(seed=config.seed * 100_003 + finished * 7919
                                          + os.getpid() % 7919, n_startup_trials=4)
    return optuna.samplers.RandomSampler(seed=config.seed)  # grid: every point is enqueued


def create_or_load(name: str, storage: optuna.storages.BaseStorage, config: StudyConfig,
                   create: bool = True) -> optuna.Study:
    """The study `name`; created with its plan enqueued exactly once if it does not exist
    (and `create`), refused if it exists with a different identity (`StudyConfig.IDENTITY`)."""
    sampler = make_sampler(config, 0)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        if not create:
            raise BadInput(f"no study named {name!r} in this storage; start it with "
                           "`scalesearch run --name NAME` first.") from None
        try:
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                        direction="maximize")
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        else:
            study.set_user_attr("config", config.identity())
            study.set_user_attr("settings", dataclasses.asdict(config))
            study.set_user_attr("sampler", config.sampler)
            for params, attrs in plan(config):
                study.enqueue_trial(params, user_attrs=attrs)
            study.set_user_attr("target", target_count(config))
            study.set_user_attr("planned", True)  # joining workers wait for this
            return study
    _wait_for_plan(study)
    _check_identity(name, study, config)
    _extend(study, config)
    return study


def _wait_for_plan(study: optuna.Study) -> None:
    deadline = time.monotonic() + PLAN_WAIT_SECONDS
    while not study.user_attrs.get("planned"):
        if time.monotonic() > deadline:
            raise BadInput(
                f"study {study.study_name!r} exists but was never planned (its creator stopped "
                "while creating it); delete it or choose another --name."
            )
        time.sleep(0.5)


def _check_identity(name: str, study: optuna.Study, config: StudyConfig) -> None:
    stored = study.user_attrs.get("config", {})
    wanted = config.identity()
    differ = [k for k in IDENTITY if stored.get(k) != wanted.get(k)]
    if differ:
        shown = "; ".join(f"{k} is {stored.get(k)!r}, not {wanted.get(k)!r}" for k in differ)
        raise BadInput(
            f"study {name!r} was run with other settings ({shown}); choose another --name or "
            "run it with its own settings."
        )


def _extend(study: optuna.Study, config: StudyConfig) -> None:
    """A re-run with more --trials raises the target (and adds grid points)."""
    wanted = target_count(config)
    if wanted <= study.user_attrs.get("target", 0):
        return
    if config.sampler == "grid":
        for params, attrs in plan(config):
            study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=True)
    study.set_user_attr("target", wanted)


# ---------------------------------------------------------------------------------------------
# dead workers and re-runs


def worker_id() -> str:
    """host:pid:start-time of this process; the start time tells a reused pid apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    fields = _proc_stat(pid)
    return fields[19] if fields else "?"


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _alive_here(worker: str) -> bool | None:
    """Whether the worker `host:pid:start` is alive; None when it ran on another host."""
    host, _, rest = worker.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc: the pid exists, which is all we can tell
    # A killed worker that its parent has not reaped yet is a zombie (Z): dead all the same.
    return fields[0] not in ("Z", "X") and (start == "?" or fields[19] == start)


def enqueue_rerun(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue a fresh copy of an unfinished trial: same parameters, its finished seeds kept."""
    attrs = dict(trial.user_attrs)
    attrs.pop("worker", None)
    attrs["rerun_of"] = trial.number
    study.enqueue_trial(trial.params, user_attrs=attrs)


def reclaim_dead(study: optuna.Study) -> list[int]:
    """Journal file: mark failed the running trials of dead workers on this host (the process
    is gone, or a zombie) and enqueue their re-runs.

    Returns the numbers of the trials this process reclaimed. Two processes may find the same
    dead trial; only the one whose state change succeeds enqueues the re-run.
    """
    reclaimed = []
    storage = study._storage
    if optuna.storages._heartbeat.is_heartbeat_enabled(storage):
        return reclaimed  # databases: Optuna's heartbeats find dead workers on any host
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker is None or _alive_here(worker) is not False:
            continue
        try:
            # The reason goes first: a finished trial takes no more attributes.
            storage.set_trial_user_attr(trial._trial_id, "failure_reason",
                                        f"worker {worker} died")
            changed = storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            changed = False  # another process reclaimed it first
        if changed:
            enqueue_rerun(study, trial)
            reclaimed.append(trial.number)
    return reclaimed


# ---------------------------------------------------------------------------------------------
# the objective


@dataclass
class Candidate:
    """What a trial trains: its kind, network and where it sits on the surface."""

    kind: str
    spec: NetworkSpec
    direction: Direction | None  # None for the baseline
    match: Match | None


class Reporter:
    """What a worker tells its user; the CLI subclasses it. All methods may be no-ops."""

    def trial_started(self, number: int, kind: str, spec: NetworkSpec, seeds: int) -> None: ...

    def seed_started(self, number: int, seed: int, total_steps: int) -> None: ...

    def step(self, step: int, total: int, loss: float) -> None: ...

    def trial_finished(self, trial: FrozenTrial) -> None: ...

    def message(self, text: str) -> None: ...


def same_network(trial: optuna.Trial) -> int | None:
    """The lowest-numbered other trial, trained or training, with this trial's network.

    Only lower numbers count, so two workers that draw the same network at once agree on which
    one trains it; the baseline and re-runs are never duplicates."""
    if trial.user_attrs.get("kind") == "baseline" or "rerun_of" in trial.user_attrs:
        return None
    network = trial.user_attrs["network"]
    for t in trial.study.get_trials(deepcopy=False,
                                    states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if (t.number < trial.number and t.user_attrs.get("network") == network
                and not dropped(t.user_attrs)):
            return t.number
    return None


class BaseCounter:
    """A study's base network and the measured FLOPs of networks relative to it (counts go
    through `scalesearch.complexity`'s cache). Calling it gives the FLOPs ratio of a spec."""

    def __init__(self, config: StudyConfig, data):
        from scalesearch.complexity import counts

        self.num_classes = data.num_classes
        self.base = scale_network(config.base_depth, config.base_width,
                                  config.base_resolution or data.base_resolution)
        self._counts = counts
        self.base_flops = counts(self.base, self.num_classes).flops

    def counts(self, spec: NetworkSpec):
        return self._counts(spec, self.num_classes)

    def __call__(self, spec: NetworkSpec) -> float:
        return self.counts(spec).flops / self.base_flops


def train_seed(spec: NetworkSpec, data, config: StudyConfig, seed: int, number: int,
               reporter: Reporter, on_epoch=None, evaluate_test: bool = False) -> dict:
    """One proxy training of `spec` with the study's settings, seed `seed` of trial `number`;
    returns the run record stored in the trial's ``runs`` (with ``test_accuracy`` when
    `evaluate_test`)."""
    from scalesearch.train import TrainConfig, train_model

    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                               optimizer=config.optimizer, lr=config.lr,
                               seed=config.seed * 1000 + seed, device=config.device,
                               evaluate_test=evaluate_test)
    reporter.seed_started(number, seed, config.epochs * (len(data.train) // config.batch_size))
    result = train_model(spec, data, train_config, on_epoch=on_epoch, on_step=reporter.step)
    record = {"seed": seed, "state": result.state, "val_accuracy": result.val_accuracy}
    if evaluate_test:
        record["test_accuracy"] = result.test_accuracy
    return {
        **record,
        "loss": result.loss,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 3),
        "images_per_second": round(result.images_per_second, 1),
        "peak_memory_bytes": result.peak_memory_bytes,
        "error": result.error,
    }


class Objective:
    """Trains one candidate per call; the only place that calls `trial.suggest_*`."""

    def __init__(self, config: StudyConfig, data, reporter: Reporter,
                 wanted: Callable[[int], bool]):
        self.config = config
        self.data = data
        self.reporter = reporter
        self.wanted = wanted  # whether sampled trial N is still needed for the target
        self.taken_over = False  # the current trial was failed by another worker
        self.duplicates_in_a_row = 0
        self.flops_ratio = BaseCounter(config, data)

    def __call__(self, trial: optuna.Trial) -> float:
        enqueued = "fixed_params" in trial.storage.get_trial_system_attrs(trial._trial_id)
        if not enqueued and not self.wanted(trial.number):
            trial.set_user_attr("surplus", True)
            raise Surplus()
        runs: list[dict] = list(trial.user_attrs.get("runs", []))
        self.taken_over = False
        try:
            return self._run(trial, runs)
        except optuna.exceptions.UpdateFinishedTrialError:
            # Another worker failed this trial (our heartbeats came late) and re-queued it.
            self.taken_over = True
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: queue the re-run, then let Optuna fail it
            enqueue_rerun(trial.study, frozen_with_runs(trial, runs))
            raise

    def _run(self, trial: optuna.Trial, runs: list[dict]) -> float:
        trial.set_user_attr("worker", worker_id())
        candidate = self._candidate(trial)
        self._record(trial, candidate)
        original = same_network(trial)
        if original is not None:
            trial.set_user_attr("duplicate_of", original)
            self.duplicates_in_a_row += 1
            raise optuna.TrialPruned(f"the same network as trial {original}")
        self.duplicates_in_a_row = 0
        if not self._feasible(trial, candidate):
            raise optuna.TrialPruned()
        seeds = max(2, self.config.seeds) if candidate.kind == "baseline" else self.config.seeds
        self.reporter.trial_started(trial.number, candidate.kind, candidate.spec, seeds)
        for seed in range(seeds):
            if any(r["seed"] == seed for r in runs):
                continue  # trained before this trial was interrupted
            runs.append(self._train(trial, candidate, seed, prunable=not runs))
            trial.set_user_attr("runs", runs)
        good = [r["val_accuracy"] for r in runs if r["state"] == "complete" and r["seed"] < seeds]
        if not good:
            trial.set_user_attr("failure", runs[-1]["error"] or "training failed")
            raise TrainingFailed(runs[-1]["error"])
        trial.set_user_attr("val_accuracy_std", sample_std(good))
        trial.set_user_attr("n_seeds", len(good))
        return sum(good) / len(good)

    def _candidate(self, trial: optuna.Trial) -> Candidate:
        if trial.user_attrs.get("kind") == "baseline":
            return Candidate("baseline", self.flops_ratio.base, None, None)
        direction = direction_from_params(
            trial.suggest_float("depth_share", 0.0, 1.0),
            trial.suggest_float("width_fraction", 0.0, 1.0),
        )
        solve = match_budget if self.config.match else nominal_match
        found = solve(direction, self.config.budget, self.flops_ratio.base, self.flops_ratio,
                      self.config.tolerance)
        return Candidate(direction.kind, found.spec, direction, found)

    def _record(self, trial: optuna.Trial, candidate: Candidate) -> None:
        c = self.flops_ratio.counts(candidate.spec)
        attrs = {
            "kind": candidate.kind,
            "network": candidate.spec.key(self.data.num_classes),
            "depth_mult": candidate.spec.depth_mult,
            "width_mult": candidate.spec.width_mult,
            "resolution": candidate.spec.resolution,
            "params": c.params,
            "flops": c.flops,
            "activations": c.activations,
            "flops_ratio": c.flops / self.flops_ratio.base_flops,
        }
        if candidate.direction is None:
            attrs.update(alpha=1.0, beta=1.0, gamma=1.0, phi=0.0, flops_matched=True,
                         depth_share=0.0, width_share=0.0, resolution_share=0.0)
        else:
            m, d = candidate.match, candidate.direction
            attrs.update(alpha=m.alpha, beta=m.beta, gamma=m.gamma, phi=m.phi,
                         flops_matched=m.within_tolerance, depth_share=d.depth,
                         width_share=d.width, resolution_share=d.resolution)
        for key, value in attrs.items():
            if trial.user_attrs.get(key) != value:
                trial.set_user_attr(key, value)

    def _feasible(self, trial: optuna.Trial, candidate: Candidate) -> bool:
        attrs = trial.user_attrs
        reasons = []
        if self.config.max_params is not None:
            trial.set_constraint("params", attrs["params"] - self.config.max_params)
            if attrs["params"] > self.config.max_params:
                reasons.append(f"params {attrs['params']:,} > {self.config.max_params:,}")
        if self.config.max_activations is not None:
            trial.set_constraint("activations",
                                 attrs["activations"] - self.config.max_activations)
            if attrs["activations"] > self.config.max_activations:
                reasons.append(f"activations {attrs['activations']:,} > "
                               f"{self.config.max_activations:,}")
        if candidate.match is not None and not candidate.match.within_tolerance \
                and not self.config.match:
            reasons.append(f"FLOPs ratio {candidate.match.flops_ratio:.3f} is more than "
                           f"{self.config.tolerance:.0%} from the budget")
        if reasons and candidate.kind != "baseline":
            trial.set_user_attr("infeasible", "; ".join(reasons))
            return False
        return True

    def _train(self, trial: optuna.Trial, candidate: Candidate, seed: int,
               prunable: bool) -> dict:
        prune = self.config.prune and prunable and candidate.kind == "compound"

        def on_epoch(epoch: int, accuracy: float) -> None:
            if prune:
                trial.report(accuracy, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        return train_seed(candidate.spec, self.data, self.config, seed, trial.number,
                          self.reporter, on_epoch=on_epoch)


def frozen_with_runs(trial: optuna.Trial, runs: list[dict]) -> FrozenTrial:
    """The trial as stored, with the seeds finished so far."""
    frozen = trial.study._storage.get_trial(trial._trial_id)
    frozen.user_attrs["runs"] = runs
    return frozen


def sample_std(values: list[float]) -> float | None:
    """Standard deviation with ddof 1; None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


# ---------------------------------------------------------------------------------------------
# a worker


def done_count(trials: list[FrozenTrial]) -> int:
    """Candidates that need no more work: complete, pruned or infeasible, or failed for good."""
    return sum(_is_done(t) for t in trials)


def _is_done(t: FrozenTrial) -> bool:
    if dropped(t.user_attrs):
        return False
    return t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        t.state == TrialState.FAIL and "failure" in t.user_attrs)


def sampled_wanted(trials: list[FrozenTrial], number: int, target: int) -> bool:
    """Whether sampled trial `number` is needed to reach `target` candidates.

    Ahead of it count the candidates that are done, running or waiting: every enqueued one
    (the plan, re-runs) and the sampled ones with a lower number. Deciding by number makes two
    workers that sample at the same moment agree: the later trial is the surplus one.
    """
    ahead = 0
    for t in trials:
        if t.number == number or dropped(t.user_attrs):
            continue
        counts = t.state in (TrialState.RUNNING, TrialState.WAITING) or _is_done(t)
        if counts and ("fixed_params" in t.system_attrs or t.number < number):
            ahead += 1
    return ahead < target


def run_worker(study: optuna.Study, config: StudyConfig, data, reporter: Reporter,
               max_trials: int | None = None) -> int:
    """Train candidates until the study has its target; returns how many this worker ran.

    Idle workers stay while others still run trials, so that they pick up the re-run of a
    trial whose worker dies. `max_trials` stops this worker early (tests, benchmarks).
    """
    ran = 0
    # The grid is enqueued whole: workers only pop it, a sampled trial is never needed.
    samples = config.sampler != "grid"

    def wanted(number: int) -> bool:
        return samples and sampled_wanted(study.get_trials(deepcopy=False), number,
                                          study.user_attrs.get("target", 0))

    objective = Objective(config, data, reporter, wanted)
    # One sampler per worker: QMC numbers its points through the storage, TPE is seeded from
    # the study's progress so a resumed or parallel worker does not replay another's points.
    study.sampler = make_sampler(config, len(study.get_trials(deepcopy=False)))
    while max_trials is None or ran < max_trials:
        optuna.storages.fail_stale_trials(study)  # database storages: dead heartbeats
        for number in reclaim_dead(study):
            reporter.message(f"trial {number}'s worker died; it will be re-run")
        trials = study.get_trials(deepcopy=False)
        target = study.user_attrs.get("target", 0)
        waiting = sum(t.state == TrialState.WAITING for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        room = samples and done_count(trials) + running + waiting < target
        if not waiting and not room:
            if not running:
                break
            time.sleep(POLL_SECONDS)  # others are training; stay to take over if one dies
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(TrainingFailed, Surplus),
                           callbacks=[lambda s, t: reporter.trial_finished(t)])
        except Exception:
            if not objective.taken_over:
                raise
            reporter.message("another worker took over this worker's trial (its heartbeats "
                             "came late); its result is dropped")
        ran += 1
        if objective.duplicates_in_a_row >= MAX_DUPLICATES_IN_A_ROW:
            reporter.message(f"{MAX_DUPLICATES_IN_A_ROW} sampled points in a row gave networks "
                             "already trained: no more distinct networks at this base; stopping")
            break
    return ran
