"""Events of a search that may or may not happen, forced: duplicates until the surface runs
out, pruning, an interrupt between two seeds, candidates over a constraint or off the budget,
and the TPE sampler. In-process on a tiny base, so each costs seconds."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from scalesearch.runs.loading import load_data
from scalesearch.search.config import build_config
from scalesearch.search.objective import MAX_DUPLICATES_IN_A_ROW
from scalesearch.search.plan import create_or_load
from scalesearch.search.training import Reporter
from scalesearch.search.trials import UPPER, done_count
from scalesearch.search.worker import run_worker, search_complete

TINY = {"base_depth": 0.25, "base_width": 0.25, "base_resolution": 16, "train_images": 128,
        "val_images": 64, "test_images": 200, "batch_size": 32, "epochs": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data"))


def study_of(data_dir, **settings):
    config = build_config(**{**TINY, "data_dir": data_dir, **settings})
    study = create_or_load("events", optuna.storages.InMemoryStorage(), config)
    return study, config, load_data(config)


class Listener(Reporter):
    def __init__(self):
        self.messages, self.seeds = [], []

    def message(self, text):
        self.messages.append(text)

    def seed_started(self, number, seed, total_steps):
        self.seeds.append((number, seed))


def test_duplicates_are_skipped_until_the_surface_runs_out(data_dir):
    # At 1.1x the tiny base has about three distinct candidates: the sampler soon draws only
    # networks trained already, and after MAX_DUPLICATES_IN_A_ROW of them the worker stops.
    study, config, data = study_of(data_dir, budget=1.1, trials=30)
    listener = Listener()
    run_worker(study, config, data, listener)
    trials = study.get_trials()
    duplicates = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert len(duplicates) >= MAX_DUPLICATES_IN_A_ROW
    for t in duplicates:
        assert t.state == TrialState.PRUNED and not t.user_attrs.get("runs")
        original = next(o for o in trials if o.number == t.user_attrs["duplicate_of"])
        assert original.user_attrs["candidate_networks"] == t.user_attrs["candidate_networks"]
    assert any("samples no more" in m for m in listener.messages)
    assert study.user_attrs["exhausted"] and search_complete(study)
    assert done_count(trials) < study.user_attrs["target"]  # it stopped short of --trials
    trained = [t.user_attrs["network"] for t in trials if t.state == TrialState.COMPLETE]
    assert len(trained) == len(set(trained))  # no network trained twice


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_a_pruned_candidate_stops_after_its_first_epoch_and_gets_no_second_network(data_dir):
    study, config, data = study_of(data_dir, trials=3, prune=True, epochs=2)
    run_worker(study, config, data, Reporter(), pruner=AlwaysPrune())
    trials = study.get_trials()
    compound = [t for t in trials if t.user_attrs.get("kind") == "compound"
                and "duplicate_of" not in t.user_attrs]
    assert compound and all(t.state == TrialState.PRUNED for t in compound)
    assert all(t.intermediate_values == {1: t.intermediate_values[1]} for t in compound)
    assert not [t for t in trials if t.user_attrs.get("bracket") == UPPER
                and t.user_attrs.get("kind") == "compound"]
    corners = [t for t in trials if t.user_attrs.get("kind") in ("depth", "width")]
    assert all(t.state == TrialState.COMPLETE for t in corners)  # only compound is pruned


def test_an_interrupt_between_two_seeds_keeps_the_first(data_dir):
    study, config, data = study_of(data_dir, trials=0)

    class StopAtSecondSeed(Listener):
        def seed_started(self, number, seed, total_steps):
            super().seed_started(number, seed, total_steps)
            if (number, seed) == (0, 1):
                raise KeyboardInterrupt

    first = StopAtSecondSeed()
    with pytest.raises(KeyboardInterrupt):
        run_worker(study, config, data, first)
    baseline = study.get_trials()[0]
    assert baseline.state == TrialState.FAIL
    kept = baseline.user_attrs["runs"]
    assert [r["seed"] for r in kept] == [0]
    resumed = Listener()
    run_worker(study, config, data, resumed)
    rerun = next(t for t in study.get_trials() if t.user_attrs.get("rerun_of") == 0)
    assert rerun.state == TrialState.COMPLETE
    assert [r["seed"] for r in rerun.user_attrs["runs"]] == [0, 1]
    assert rerun.user_attrs["runs"][0] == kept[0]  # seed 0 was not trained again
    assert (rerun.number, 0) not in resumed.seeds and (rerun.number, 1) in resumed.seeds


def test_candidates_over_a_constraint_are_recorded_not_trained(data_dir):
    study, config, data = study_of(data_dir, trials=2, max_params=1)
    listener = Listener()
    run_worker(study, config, data, listener)
    scaled = [t for t in study.get_trials() if t.user_attrs.get("kind") not in ("baseline",)
              and "duplicate_of" not in t.user_attrs]
    assert scaled and all("infeasible" in t.user_attrs and "params" in t.user_attrs["infeasible"]
                          for t in scaled)
    assert all(not t.user_attrs.get("runs") for t in scaled)
    assert {number for number, _ in listener.seeds} == {0}  # only the baseline trained
    # Optuna sees the violation too (trial.set_constraint: a positive value is infeasible).
    assert all(any(k.endswith(":params") and v > 0 for k, v in t.system_attrs.items())
               for t in scaled)


def test_without_matching_off_budget_candidates_are_infeasible(data_dir):
    study, config, data = study_of(data_dir, trials=2, match=False)
    run_worker(study, config, data, Reporter())
    for t in study.get_trials():
        attrs = t.user_attrs
        if attrs.get("kind") in (None, "baseline") or "duplicate_of" in attrs:
            continue
        off = abs(attrs["flops_ratio"] / 2.0 - 1) > config.tolerance
        assert ("infeasible" in attrs) == off
        assert (t.state == TrialState.COMPLETE) == (not off)
        assert attrs["phi"] == 1.0  # nominal scale: not solved


def test_the_tpe_sampler_runs_a_search(data_dir):
    study, config, data = study_of(data_dir, trials=3, sampler="tpe")
    run_worker(study, config, data, Reporter())
    compound = [t for t in study.get_trials() if t.user_attrs.get("kind") == "compound"
                and t.user_attrs.get("bracket") != UPPER and "duplicate_of" not in t.user_attrs]
    assert len(compound) == 3 and all(t.state == TrialState.COMPLETE for t in compound)
    assert len({(t.params["u"], t.params["v"]) for t in compound}) == 3
