"""A stage after the search: planned networks, trained on fresh seeds, judged on the test split.

The confirmation, the comparison across budgets and the fidelity check share this shape. A
stage of study NAME is its own Optuna study, ``NAME.<stage>``, in the search's storage. Its
planner makes a list of points (one network each, with the attributes a search trial records:
kind, candidate, bracket, budget, the network and its counts); they are enqueued once, by
whoever creates the stage, and points added later (a comparison at more phis) are enqueued
then. Workers pop them like search trials, train each `seeds` times with the stage's own seed
range (`scalesearch.search.objective.STAGE_SEEDS`) and evaluate on the test split, keeping
per-image correctness. A trial interrupted by Ctrl-C re-queues itself with its finished seeds,
a dead worker's trial is re-run (the search's machinery), and a network that another point of
the stage trains already is not trained twice.
"""

from __future__ import annotations

import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from scalesearch.errors import BadInput
from scalesearch.net.family import get_family
from scalesearch.search.config import StudyConfig
from scalesearch.search.costs import CostCounter
from scalesearch.search.objective import same_network
from scalesearch.search.training import Reporter, TrainingFailed, run_seeds, sample_std, train_seed
from scalesearch.store.workers import enqueue_rerun, frozen_with_runs, reclaim_dead, worker_id
from scalesearch.verdict.results import trial_rows

PLAN_WAIT_SECONDS = 60.0  # how long a joining worker waits for the creator to enqueue the plan
# What a point records of its network (the attributes of a search trial that results read).
POINT_KEYS = ("kind", "candidate", "bracket", "budget", "alpha", "beta", "gamma", "phi",
              "depth_share", "width_share", "resolution_share", "depth_mult", "width_mult",
              "resolution", "params", "flops", "activations", "flops_ratio", "cost",
              "cost_ratio", "flops_matched", "network")
EXTRA = ("test_accuracy", "phi", "epochs")  # stage rows: the trials.csv columns plus these


def stage_name(name: str, stage: str) -> str:
    """The Optuna study of `stage` of study `name`."""
    return f"{name}.{stage}"


def load_existing(name: str, stage: str, storage) -> optuna.Study | None:
    """The stage's study, or None if it was never planned."""
    try:
        study = optuna.load_study(study_name=stage_name(name, stage), storage=storage)
    except KeyError:
        return None
    _wait_for_plan(study)
    return study


def create_or_load(name: str, stage: str, storage, meta: dict,
                   points: list[dict]) -> optuna.Study:
    """The stage's study: created with `meta` as user attributes and `points` enqueued, or
    loaded, with the points it lacks (by their ``point`` id) enqueued. `meta` must equal what
    the stage was created with (its ``identity`` entries are checked)."""
    sname = stage_name(name, stage)
    try:
        study = optuna.load_study(study_name=sname, storage=storage)
    except KeyError:
        try:
            study = optuna.create_study(study_name=sname, storage=storage, direction="maximize",
                                        sampler=optuna.samplers.RandomSampler(seed=0))
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
            study = optuna.load_study(study_name=sname, storage=storage)
        else:
            for key, value in meta.items():
                study.set_user_attr(key, value)
            _enqueue(study, points, [])
            study.set_user_attr("planned", True)
            return study
    _wait_for_plan(study)
    stored = study.user_attrs.get("identity", {})
    differ = [k for k, v in meta.get("identity", {}).items() if stored.get(k) != v]
    if differ:
        shown = "; ".join(f"{k} was {stored.get(k)!r}, not {meta['identity'][k]!r}"
                          for k in differ)
        raise BadInput(f"the {stage} stage of study {name!r} was made with other settings "
                       f"({shown}); give those or delete {sname!r} to start another.")
    _enqueue(study, points, study.user_attrs.get("points", []))
    return study


def _enqueue(study: optuna.Study, points: list[dict], have: list[str]) -> None:
    added = [p for p in points if p["point"] not in have]
    for point in added:
        study.enqueue_trial({}, user_attrs=point)
    if added:
        study.set_user_attr("points", [*have, *(p["point"] for p in added)])


def _wait_for_plan(study: optuna.Study) -> None:
    deadline = time.monotonic() + PLAN_WAIT_SECONDS
    while not study.user_attrs.get("planned"):
        if time.monotonic() > deadline:
            raise BadInput(f"{study.study_name!r} exists but was never planned (its creator "
                           "stopped while creating it); delete it and run again.")
        time.sleep(0.5)


def point_from_row(row: dict, point: str, **changes) -> dict:
    """A stage point that trains the network of a search row (a dict of its columns)."""
    attrs = {k: _plain(row[k]) for k in POINT_KEYS if k in row}
    attrs.update(changes, point=point)
    return attrs


def _plain(value):
    return value.item() if hasattr(value, "item") else value


class StageObjective:
    """Trains one planned network per call, `seeds` times, evaluated on the test split."""

    def __init__(self, config: StudyConfig, data, stage: str, seeds: int, reporter: Reporter,
                 epochs: int | None = None):
        self.config = config
        self.data = data
        self.stage = stage
        self.seeds = seeds
        self.epochs = epochs
        self.reporter = reporter
        self.counter = CostCounter.for_data(config, data)

    def __call__(self, trial: optuna.Trial) -> float:
        runs: list[dict] = list(trial.user_attrs.get("runs", []))
        try:
            return self._run(trial, runs)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: queue the re-run, then let Optuna fail it
            enqueue_rerun(trial.study, frozen_with_runs(trial, runs))
            raise

    def _run(self, trial: optuna.Trial, runs: list[dict]) -> float:
        trial.set_user_attr("worker", worker_id())
        attrs = trial.user_attrs
        spec = get_family(self.config.base).scale(attrs["depth_mult"], attrs["width_mult"],
                                                  attrs["resolution"])
        if spec.key(self.data.num_classes) != attrs["network"]:
            raise BadInput(f"point {attrs['point']} of {trial.study.study_name!r} names a "
                           "network of another data set; delete the stage and run again.")
        pointer = self.same_as(trial)
        if pointer is not None:
            trial.set_user_attr("same_network_as", pointer)
            raise optuna.TrialPruned(f"the same network as trial {pointer}")
        self.counter.checked(spec)
        self.reporter.trial_started(trial.number, self.label(attrs), spec, self.seeds)
        good = run_seeds(trial, runs, self.seeds, lambda k: self.train(spec, trial, k))
        tests = [r["test_accuracy"] for r in good]
        trial.set_user_attr("test_accuracy_std", sample_std(tests))
        trial.set_user_attr("n_seeds", len(good))
        return sum(tests) / len(tests)

    # What a stage may change: which earlier trial already trained this point's network, how
    # the point is named in progress lines, and how its run k is trained.

    def same_as(self, trial: optuna.Trial) -> int | None:
        return same_network(trial)

    def label(self, attrs: dict) -> str:
        return f"{attrs.get('point', attrs['kind'])}"

    def train(self, spec, trial: optuna.Trial, k: int) -> dict:
        return train_seed(spec, self.data, self.config, k, trial.number, self.reporter,
                          stage=self.stage, evaluate_test=True, epochs=self.epochs)


def pending(study: optuna.Study) -> int:
    """Planned networks not finished yet (waiting, or running in a process that died)."""
    return sum(t.state in (TrialState.WAITING, TrialState.RUNNING)
               for t in study.get_trials(deepcopy=False))


def finished(study: optuna.Study) -> int:
    """Planned networks that need no more work: complete, reused, or failed for good."""
    return sum(is_finished(t) for t in study.get_trials(deepcopy=False))


def is_finished(t: FrozenTrial) -> bool:
    return t.state in (TrialState.COMPLETE, TrialState.PRUNED) or "failure" in t.user_attrs


def run_stage(study: optuna.Study, objective: StageObjective, reporter: Reporter) -> int:
    """Train every waiting point of the stage; returns how many this process trained. Like a
    search worker it stays while others train, to take over the re-run of a dead one."""
    ran = 0
    while True:
        optuna.storages.fail_stale_trials(study)
        for number in reclaim_dead(study):
            reporter.message(f"trial {number}'s process died; it will be re-run")
        trials = study.get_trials(deepcopy=False)
        if not any(t.state == TrialState.WAITING for t in trials):
            if not any(t.state == TrialState.RUNNING for t in trials):
                return ran
            time.sleep(2.0)
            continue
        study.optimize(objective, n_trials=1, catch=(TrainingFailed,),
                       callbacks=[lambda s, t: reporter.trial_finished(t)])
        ran += 1


def stage_rows(study: optuna.Study):
    """The stage's rows: the trials.csv columns plus test accuracy (and phi, epochs)."""
    return trial_rows(study.get_trials(deepcopy=False), extra=EXTRA)
