"""A worker: trains candidates of a search until the study has its target."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from scalesearch.search.config import StudyConfig
from scalesearch.search.objective import (
    MAX_DUPLICATES_IN_A_ROW,
    Objective,
    Reporter,
    Surplus,
    TrainingFailed,
)
from scalesearch.search.plan import make_sampler
from scalesearch.search.trials import done_count, sampled_wanted
from scalesearch.store.workers import reclaim_dead

POLL_SECONDS = 2.0  # how often an idle worker looks for work others left behind


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
