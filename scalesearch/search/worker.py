"""A worker: trains candidates of a search until the study has its target."""

from __future__ import annotations

import time
import warnings

import optuna
from optuna.trial import TrialState

from scalesearch.search.config import StudyConfig
from scalesearch.search.objective import MAX_DUPLICATES_IN_A_ROW, Objective, Surplus
from scalesearch.search.sampling import CompoundMedianPruner, make_sampler
from scalesearch.search.training import Reporter, TrainingFailed
from scalesearch.search.trials import open_count, sampled_wanted
from scalesearch.store.workers import reclaim_dead

POLL_SECONDS = 2.0  # how often an idle worker looks for work others left behind


def run_worker(study: optuna.Study, config: StudyConfig, data, reporter: Reporter,
               max_trials: int | None = None, pruner: optuna.pruners.BasePruner | None = None
               ) -> int:
    """Train candidates until the study has its target; returns how many this worker ran.

    Idle workers stay while others still run trials, so that they pick up the re-run of a
    trial whose worker dies. `max_trials` stops this worker early (tests, benchmarks);
    `pruner` replaces the compound median pruner (tests).
    """
    ran = 0
    # The grid is enqueued whole: workers only pop it, a sampled trial is never needed.
    samples = config.sampler != "grid"

    def wanted(number: int) -> bool:
        return samples and sampled_wanted(study.get_trials(deepcopy=False), number,
                                          study.user_attrs.get("target", 0))

    objective = Objective(config, data, reporter, wanted)
    if study.user_attrs.get("classes") != [data.num_classes, data.base_resolution]:
        # Later stages (compare) plan their networks from these, without loading the data.
        study.set_user_attr("classes", [data.num_classes, data.base_resolution])
    # One sampler per worker: QMC numbers its points through the storage, TPE is seeded from
    # the study's progress so a resumed or parallel worker does not replay another's points.
    study.sampler = make_sampler(config, len(study.get_trials(deepcopy=False)))
    study.pruner = pruner or CompoundMedianPruner(config.epochs)
    while max_trials is None or ran < max_trials:
        with warnings.catch_warnings():  # "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # database storages: dead heartbeats
        for number in reclaim_dead(study):
            reporter.message(f"trial {number}'s worker died; it will be re-run")
        trials = study.get_trials(deepcopy=False)
        target = study.user_attrs.get("target", 0)
        waiting = sum(t.state == TrialState.WAITING for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        room = samples and open_count(trials) < target
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
        if samples and objective.duplicates_in_a_row >= MAX_DUPLICATES_IN_A_ROW:
            reporter.message(f"{MAX_DUPLICATES_IN_A_ROW} sampled points in a row gave networks "
                             "already trained: no more distinct networks at this base; this "
                             "worker samples no more")
            samples = False  # what is queued (second networks, re-runs) is still trained
            study.set_user_attr("exhausted", True)
    return ran


def search_complete(study: optuna.Study) -> bool:
    """Nothing left to train: no trial waits or runs, and the target is reached (or the
    surface ran out of distinct networks)."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials):
        return False
    return (open_count(trials) >= study.user_attrs.get("target", 0)
            or bool(study.user_attrs.get("exhausted")))
