"""Where the search looks (scalesearch.search.sampling): Sobol points that really are Sobol, in
order, never repeated by parallel workers, continued on resume; and the compound-only pruner."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial
from scipy.stats import qmc

from scalesearch.search.config import StudyConfig
from scalesearch.search.sampling import CompoundMedianPruner, SobolSampler, make_sampler
from scalesearch.search.space import PARAMS, direction_from_params, largest_share

optuna.logging.set_verbosity(optuna.logging.ERROR)


def sobol(seed: int, n: int) -> np.ndarray:
    return qmc.Sobol(d=2, scramble=True, seed=seed).random(1024)[:n]


def draw(study: optuna.Study) -> tuple[float, float]:
    trial = study.ask()
    point = tuple(trial.suggest_float(p, 0.0, 1.0) for p in PARAMS)
    study.tell(trial, 0.0)
    return point


def test_sampled_trials_take_the_sobol_sequence_in_order_and_enqueued_ones_take_none():
    study = optuna.create_study(sampler=SobolSampler(seed=3))
    study.enqueue_trial({})  # the baseline: planned, no parameters
    study.enqueue_trial({"u": 0.5, "v": 0.5})  # a planned point, not the sampler's
    points = [None]
    study.tell(study.ask(), 0.1)
    for i in range(6):
        if i == 2:
            study.enqueue_trial({"u": 0.1, "v": 0.9})
        points.append(draw(study))
    sampled = [p for p in points[1:] if p not in ((0.5, 0.5), (0.1, 0.9))]
    assert np.allclose(sampled, sobol(3, len(sampled)))


def test_parallel_workers_never_propose_the_same_point_and_a_resume_continues():
    storage = optuna.storages.InMemoryStorage()
    first = optuna.create_study(study_name="s", storage=storage, sampler=SobolSampler(0))
    second = optuna.load_study(study_name="s", storage=storage, sampler=SobolSampler(0))
    # Two workers ask at the same time: both trials exist before either samples.
    a, b = first.ask(), second.ask()
    pa = tuple(a.suggest_float(p, 0, 1) for p in PARAMS)
    pb = tuple(b.suggest_float(p, 0, 1) for p in PARAMS)
    assert pa != pb
    points = [pa, pb, draw(first), draw(second), draw(first)]
    assert len(set(points)) == len(points)
    resumed = optuna.load_study(study_name="s", storage=storage, sampler=SobolSampler(0))
    points.append(draw(resumed))  # a new process: the sequence goes on, nothing replayed
    assert np.allclose(points, sobol(0, len(points)))


def test_eight_points_cover_every_third_of_the_triangle():
    study = optuna.create_study(sampler=make_sampler(StudyConfig(sampler="qmc"), 0))
    thirds = {largest_share(direction_from_params(*draw(study))) for _ in range(8)}
    assert thirds == {"depth", "width", "resolution"}


def test_tpe_workers_joining_at_other_progress_do_not_replay_each_other():
    config = StudyConfig(sampler="tpe", seed=1)
    first = [draw(optuna.create_study(sampler=make_sampler(config, done))) for done in (0, 5)]
    assert first[0] != first[1]


def compound(study, values, state=TrialState.COMPLETE, kind="compound"):
    study.add_trial(create_trial(
        state=state, value=values[-1] if state == TrialState.COMPLETE else None,
        intermediate_values=dict(enumerate(values, start=1)), user_attrs={"kind": kind}))


def pruned(pruner, study, values, kind="compound"):
    trial = study.ask()
    trial.set_user_attr("kind", kind)
    for epoch, value in enumerate(values, start=1):
        trial.report(value, epoch)
    frozen = study._storage.get_trial(trial._trial_id)
    return pruner.prune(study, frozen)


def test_pruning_waits_for_warm_up_and_startup_and_compares_compound_only():
    pruner = CompoundMedianPruner(epochs=4, startup=3)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for kind in ("baseline", "depth", "width", "resolution"):  # strong corners do not count
        compound(study, [0.9, 0.9, 0.9, 0.9], kind=kind)
    compound(study, [0.2, 0.3, 0.4, 0.5])
    compound(study, [0.2, 0.3, 0.4, 0.5])
    assert not pruned(pruner, study, [0.01, 0.01])  # only 2 finished compound candidates
    compound(study, [0.2, 0.3, 0.4, 0.5])
    assert not pruned(pruner, study, [0.01])  # epoch 1 of 4: inside the warm-up
    assert pruned(pruner, study, [0.01, 0.01])  # epoch 2: below the compound median (0.3)
    assert not pruned(pruner, study, [0.01, 0.35])  # above it
    assert not pruned(pruner, study, [0.01, 0.01], kind="depth")  # corners are never pruned


@pytest.mark.parametrize("epochs, warmup", [(1, 1), (3, 2), (4, 2), (10, 5)])
def test_warm_up_is_at_least_half_the_proxy_epochs(epochs, warmup):
    assert CompoundMedianPruner(epochs).warmup == warmup


def test_a_sobol_value_spans_the_range_it_is_asked_for():
    study = optuna.create_study(sampler=SobolSampler(seed=4))
    trial = study.ask()
    u, v = trial.suggest_float("u", 0.2, 0.6), trial.suggest_float("v", 0.5, 1.0)
    point = sobol(4, 1)[0]
    assert (u, v) == pytest.approx((0.2 + 0.4 * point[0], 0.5 + 0.5 * point[1]))


def test_the_sobol_sampler_draws_only_u_and_v_as_floats():
    study = optuna.create_study(sampler=SobolSampler(seed=0))
    with pytest.raises(ValueError, match="'depth'"):
        study.ask().suggest_float("depth", 0.0, 1.0)
    with pytest.raises(ValueError, match="'u'"):
        study.ask().suggest_int("u", 0, 10)


def test_each_sampler_keeps_the_study_seed():
    qmc_sampler = make_sampler(StudyConfig(sampler="qmc", seed=5), 3)
    assert isinstance(qmc_sampler, SobolSampler) and qmc_sampler.seed == 5
    for name in ("tpe", "grid"):
        config = StudyConfig(sampler=name, seed=2)
        # The same study seed and progress in the same process: the same proposals.
        twice = [[draw(study) for _ in range(3)]
                 for study in (optuna.create_study(sampler=make_sampler(config, 1))
                               for _ in range(2))]
        assert twice[0] == twice[1], name
        other = optuna.create_study(sampler=make_sampler(StudyConfig(sampler=name, seed=3), 1))
        assert [draw(other) for _ in range(3)] != twice[0], name


def test_tpe_models_u_and_v_together_once_four_points_finished():
    sampler = make_sampler(StudyConfig(sampler="tpe", seed=1), 0)
    study = optuna.create_study(sampler=sampler)
    space = {p: optuna.distributions.FloatDistribution(0.0, 1.0) for p in PARAMS}

    def proposal():
        trial = study._storage.get_trial(study.ask()._trial_id)
        return sampler.sample_relative(study, trial,
                                       sampler.infer_relative_search_space(study, trial))

    for i in range(4):
        assert proposal() == {}  # random start-up points
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.1 * i,
                                     params={"u": 0.2 * i, "v": 0.1}, distributions=space))
    assert set(proposal()) == set(PARAMS)  # both drawn from one joint model


def test_a_candidate_at_the_median_is_not_pruned():
    pruner = CompoundMedianPruner(epochs=2, startup=3)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for top in (0.2, 0.3, 0.4):
        compound(study, [0.1, top])
    assert not pruned(pruner, study, [0.1, 0.3])  # equal to the median: kept
    assert pruned(pruner, study, [0.1, 0.29])


def test_finished_candidates_count_only_where_they_reached_the_epoch():
    pruner = CompoundMedianPruner(epochs=4, startup=3)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    compound(study, [0.5, 0.6, 0.7, 0.8])
    compound(study, [0.5, 0.6, 0.7, 0.8])
    compound(study, [0.5])  # finished (pruned candidates are not the only short ones)
    assert not pruned(pruner, study, [0.01, 0.01])  # 2 reached epoch 2: fewer than 3
    compound(study, [0.5, 0.6])
    assert pruned(pruner, study, [0.01, 0.01])
