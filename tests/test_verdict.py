"""From stored trials to the verdict (scalesearch.verdict.results, .decision, the confirmation's
plan): rows, networks trained once, strategies at the budget, and a rule that is symmetric,
never wins on zero information, and reuses no seed."""

from __future__ import annotations

import math
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState, create_trial

from scalesearch.search.objective import same_candidate, same_network
from scalesearch.search.training import MAX_SEEDS, STAGE_SEEDS, training_seed
from scalesearch.stages import confirm
from scalesearch.store.bits import pack, unpack
from scalesearch.verdict import decision, results, stats

N = 400  # evaluation images of the constructed studies


def network(kind, candidate, bracket, ratio, key, budget=2.0, **extra):
    shares = {"depth": (1, 0, 0), "width": (0, 1, 0), "resolution": (0, 0, 1),
              "baseline": (0, 0, 0)}.get(kind, (0.5, 0.25, 0.25))
    return {"kind": kind, "candidate": candidate, "bracket": bracket, "budget": budget,
            "network": key, "flops_ratio": ratio, "flops": int(ratio * 1000), "params": 10,
            "activations": 10, "alpha": 1.0 + shares[0], "beta": 1.0, "gamma": 1.0,
            "phi": 1.0, "depth_share": shares[0], "width_share": shares[1],
            "resolution_share": shares[2], "depth_mult": 0.5, "width_mult": 0.5,
            "resolution": 40, "flops_matched": bracket == "matched", **extra}


def runs(correct_rows, split="val"):
    return [{"seed": s, "state": "complete", f"{split}_accuracy": float(np.mean(c)),
             "val_accuracy": float(np.mean(c)), f"{split}_correct": pack(c)}
            for s, c in enumerate(correct_rows)]


def trial(number, attrs, correct_rows=None, state=TrialState.COMPLETE, split="val", **extra):
    attrs = {**attrs, **extra}
    if correct_rows is not None:
        attrs["runs"] = runs(correct_rows, split)
    value = (float(np.mean([np.mean(c) for c in correct_rows]))
             if correct_rows is not None and state == TrialState.COMPLETE else None)
    t = create_trial(state=state, value=value, user_attrs=attrs)
    t.number = number
    return t


def accurate(rng, accuracy, seeds=1):
    return [rng.random(N) < accuracy for _ in range(seeds)]


def study_trials(rng, accuracies):
    """A search: baseline, three corners (depth and resolution bracketed), two compound."""
    a = accuracies
    return [
        trial(0, network("baseline", 0, "matched", 1.0, "base", budget=2.0),
              accurate(rng, a["baseline"], 2)),
        trial(1, network("depth", 1, "lower", 1.6, "d-lo"), accurate(rng, a["depth"])),
        trial(2, network("width", 2, "matched", 2.0, "w"), accurate(rng, a["width"])),
        trial(3, network("resolution", 3, "lower", 1.7, "r-lo"), accurate(rng, a["resolution"])),
        trial(4, network("depth", 1, "upper", 2.4, "d-hi"), accurate(rng, a["depth"])),
        trial(5, network("resolution", 3, "upper", 2.5, "r-hi"), accurate(rng, a["resolution"])),
        trial(6, network("compound", 6, "matched", 2.02, "c6"), accurate(rng, a["c6"])),
        trial(7, network("compound", 7, "matched", 1.99, "c7"), accurate(rng, a["c7"])),
    ]


def test_rows_leave_out_superseded_and_dropped_trials_and_point_to_reused_networks():
    rng = np.random.default_rng(0)
    trials = [
        trial(0, network("baseline", 0, "matched", 1.0, "base"), accurate(rng, 0.3, 2)),
        trial(1, network("compound", 1, "matched", 2.0, "x"), accurate(rng, 0.3, 1),
              state=TrialState.FAIL),
        trial(2, network("compound", 1, "matched", 2.0, "x"), accurate(rng, 0.3, 2),
              rerun_of=1),
        trial(3, network("compound", 3, "matched", 2.0, "x"), state=TrialState.PRUNED,
              same_network_as=2),
        trial(4, network("compound", 4, "matched", 2.0, "y"), state=TrialState.PRUNED,
              duplicate_of=2),
        trial(5, network("compound", 5, "matched", 2.0, "z"), state=TrialState.PRUNED,
              infeasible="params 9 > 5"),
    ]
    frame = results.trial_rows(trials)
    assert 1 not in set(frame["trial"])  # its re-run carries its seeds
    assert 4 not in set(frame["trial"])  # a duplicate candidate is dropped
    assert frame[frame["trial"] == 2]["seed"].tolist() == [0, 1]
    assert frame[frame["trial"] == 3]["state"].tolist() == ["reused"]
    assert frame[frame["trial"] == 3]["reuses"].tolist() == [2]
    assert frame[frame["trial"] == 5]["state"].tolist() == ["infeasible"]
    trained = results.network_runs(frame)
    assert set(trained) == {"base", "x"} and trained["x"].shape == (2, N)
    # The reused candidate is judged by the network trial 2 trained: the same estimate.
    judged, _, _ = results.judge(frame)
    by_candidate = {j.strategy.candidate: j.estimate.value for j in judged}
    assert by_candidate[3] == by_candidate[1]
    assert "val_correct" not in results.csv_text(frame).splitlines()[0]


def test_a_bracketed_strategy_is_interpolated_and_incomplete_until_both_networks_ran():
    rng = np.random.default_rng(1)
    trials = study_trials(rng, {"baseline": 0.3, "depth": 0.3, "width": 0.3, "resolution": 0.3,
                                "c6": 0.3, "c7": 0.3})
    found = {s.candidate: s for s in results.strategies(results.trial_rows(trials))}
    depth = found[1]
    assert depth.method == "interpolated" and depth.trials == [1, 4]
    weights = [w for w, _ in depth.terms]
    assert weights == pytest.approx(stats.interpolation_weights([1.6, 2.4], 2.0))
    partial = results.strategies(results.trial_rows(trials[:4] + trials[5:]))
    assert {s.candidate: s.method for s in partial}[1] == "incomplete"


def test_an_off_budget_network_is_never_best():
    rng = np.random.default_rng(2)
    trials = [trial(0, network("baseline", 0, "matched", 1.0, "base"), accurate(rng, 0.3, 2)),
              trial(1, network("compound", 1, "off budget", 2.6, "big"), accurate(rng, 0.9)),
              trial(2, network("compound", 2, "matched", 2.0, "fair"), accurate(rng, 0.3))]
    judged, _, _ = results.judge(results.trial_rows(trials))
    assert results.best_of(judged, "compound").strategy.candidate == 2


@settings(max_examples=examples(25), deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_the_search_summary_names_each_strategy_at_the_budget(seed):
    rng = np.random.default_rng(seed)
    acc = {k: float(rng.uniform(0.2, 0.6)) for k in ("baseline", "depth", "width",
                                                        "resolution", "c6", "c7")}
    frame = results.trial_rows(study_trials(rng, acc))
    summary = results.search_summary(frame, 2.0)
    methods = {k: v["method"] for k, v in summary["at_budget"].items()}
    assert methods == {"compound": "matched", "depth": "interpolated", "width": "matched",
                       "resolution": "interpolated"}
    trained = results.network_runs(frame)
    keys = {int(r["trial"]): r["network"] for _, r in frame.iterrows()}
    for entry in summary["at_budget"].values():
        direct = sum(n["weight"] * trained[keys[n["trial"]]].mean() for n in entry["networks"])
        assert entry["val_accuracy"] == pytest.approx(direct)
    best = max((6, 7), key=lambda t: trained[f"c{t}"].mean())
    assert summary["best"]["candidate"] == best
    assert summary["verdict"]["answer"] == "undecided"  # until the confirmation


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(0, 20), st.sampled_from(sorted(STAGE_SEEDS)),
       st.sampled_from(sorted(STAGE_SEEDS)), st.integers(0, MAX_SEEDS - 1),
       st.integers(0, MAX_SEEDS - 1))
def test_stages_never_share_a_training_seed(study_seed, stage, other, index, other_index):
    if stage != other:
        assert training_seed(study_seed, stage, index) != training_seed(study_seed, other,
                                                                        other_index)
    with pytest.raises(ValueError):
        training_seed(study_seed, stage, MAX_SEEDS)


def test_the_confirmation_trains_the_choices_again_on_its_own_seeds_and_the_test_split():
    rng = np.random.default_rng(6)
    trials = study_trials(rng, {"baseline": 0.3, "depth": 0.5, "width": 0.4, "resolution": 0.3,
                                "c6": 0.35, "c7": 0.45})
    meta, points = confirm.plan(results.trial_rows(trials), seeds=2)
    assert meta["opponent"] == "depth"  # the best single dimension on validation
    assert meta["chosen"]["compound"] == 7
    assert sorted(p["point"] for p in points) == [
        "compound:matched", "depth:lower", "depth:upper", "resolution:lower",
        "resolution:upper", "width:matched"]
    search_seeds = {training_seed(0, "search", k) for k in range(MAX_SEEDS)}
    assert not search_seeds & {training_seed(0, "confirm", k) for k in range(meta["seeds"])}


def test_networks_and_candidates_are_trained_once():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    study.add_trials([
        create_trial(state=TrialState.COMPLETE, value=0.3, user_attrs={
            "kind": "compound", "network": "A", "candidate_networks": ["A"]}),
        create_trial(state=TrialState.FAIL, user_attrs={
            "kind": "compound", "network": "B", "candidate_networks": ["B"]}),
        create_trial(state=TrialState.PRUNED, user_attrs={
            "kind": "compound", "network": "P", "candidate_networks": ["P", "Q"]}),
    ])
    running = study.ask()  # trial 3, still training network C
    for key, value in (("network", "C"), ("kind", "compound"), ("candidate_networks", ["C"])):
        running.set_user_attr(key, value)

    def drawn(network, networks=None, **attrs):
        t = study.ask()
        for key, value in {"kind": "compound", "network": network,
                           "candidate_networks": networks or [network], **attrs}.items():
            t.set_user_attr(key, value)
        return t

    assert same_network(drawn("A")) == 0  # trained before
    assert same_network(drawn("C")) == 3  # being trained by another worker
    assert same_network(drawn("P")) == 2  # pruned networks count as seen
    assert same_network(drawn("B")) is None  # its only other trial failed
    assert same_network(drawn("A", rerun_of=0)) is None  # a re-run is never a pointer
    assert same_network(running) is None  # a lower number never yields to a higher one
    assert same_candidate(drawn("P", ["P", "Q"])) == 2
    assert same_candidate(drawn("P", ["P", "R"])) is None  # one new network: a new candidate
    assert same_candidate(drawn("A", kind="baseline")) is None


def load_benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "verdict_calibration.py"
    spec = importlib.util.spec_from_file_location("verdict_calibration", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    return bench


def test_the_calibration_benchmark_runs_every_scenario_and_is_calibrated_at_a_small_size():
    bench = load_benchmark()
    studies, wins = 30, 0
    for scenario in bench.SCENARIOS:
        shares = bench.calibrate(scenario, studies, seed=11)
        total, compound, single = bench.false_wins(shares)
        wins += round(total * studies)
        assert "undecided" not in shares, (scenario.name, shares)
        assert math.isclose(sum(shares.values()), 1.0)
    # 210 null studies at a true 5%: 22 or more false wins has probability below 0.1%.
    assert wins < 22, wins
    # and the power study finds a true 3-point advantage now and then, never a false winner
    power = bench.calibrate(bench.power_scenario(1.0), studies, seed=12)
    assert power.get("compound", 0) > 0 and not set(power) & {"depth", "width", "resolution"}


def test_the_calibration_scenarios_make_the_noise_they_name():
    # Each scenario's world really has its kind of noise: unequal seed SDs, collapsed runs,
    # networks that differ image by image, brackets off the truth.
    bench = load_benchmark()
    by_name = {s.name: s for s in bench.SCENARIOS}
    rng = np.random.default_rng(3)
    world = bench.World(rng, by_name["unequal"])
    sds = [world.network(f"n{i}", 0.0)["sd"] for i in range(200)]
    assert min(sds) >= 0.3 and max(sds) <= 10 and max(sds) / min(sds) > 10
    world = bench.World(rng, by_name["collapse-compared"])
    world.network("a", 0.0)
    tests = [unpack(r["test_correct"]) for r in world.runs("a", "test", 400)]
    lost = [not (t & world.group["test"]).any() for t in tests]
    assert 0.18 < np.mean(lost) < 0.32  # a quarter of the confirmation's runs collapse
    vals = [unpack(r["val_correct"]) for r in world.runs("a", "val", 100)]
    assert all((v & world.group["val"]).any() for v in vals)  # and no search run does
    world = bench.World(rng, by_name["interaction"])
    a, b = world.network("a", 0.0), world.network("b", 0.0)
    assert np.corrcoef(a["own"]["test"], b["own"]["test"])[0, 1] < 0.1
    world = bench.World(rng, by_name["curvature"])
    trials = bench._search(world, by_name["curvature"])
    offsets = {(t.user_attrs["kind"], t.user_attrs["bracket"]):
               world.networks[t.user_attrs["network"]]["offset"] for t in trials}
    # a concave pair and a non-monotone one, the truth at the budget (offset 0) between
    assert offsets[("depth", "lower")] == -3.0 and offsets[("depth", "upper")] == 1.0
    assert offsets[("resolution", "lower")] == 2.0 and offsets[("resolution", "upper")] == -1.0
    assert offsets[("width", "matched")] == 0.0


ENTRY_FIELDS = ("kind", "alpha", "beta", "gamma", "depth_share", "width_share",
                "resolution_share", "depth_mult", "width_mult", "resolution", "params", "flops",
                "flops_ratio")


def test_the_search_summary_is_plain_json_with_every_field_of_each_strategy():
    import json

    rng = np.random.default_rng(20)
    trials = study_trials(rng, {"baseline": 0.3, "depth": 0.4, "width": 0.5, "resolution": 0.35,
                                "c6": 0.45, "c7": 0.55})
    frame = results.trial_rows(trials)
    summary = results.search_summary(frame, 2.0)
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary  # plain types, no NaN
    assert set(summary) == {"budget", "accuracy", "best", "baseline", "at_budget", "noise",
                            "trained_models", "candidates", "verdict"}
    assert (summary["budget"], summary["accuracy"]) == (2.0, "val")
    assert summary["trained_models"] == 9  # the baseline twice, seven networks once
    assert summary["candidates"] == 6  # baseline, depth, width, resolution, two compound
    assert summary["verdict"] == results.PENDING
    trained = results.network_runs(frame)
    noise = stats.seed_noise(trained)
    assert summary["noise"] == {"seed_std": noise.seed_std, "degrees_of_freedom": 1, "images": N}
    attrs = {t.number: t.user_attrs for t in trials}

    def expected(candidate, method, members):
        """The entry of a candidate judged by `members`, (trial, weight) pairs."""
        rows = [attrs[number] for number, _ in members]
        near = min(rows, key=lambda r: abs(math.log(r["flops_ratio"] / 2.0)))
        terms = [(w, attrs[number]["network"]) for number, w in members]
        return {**{k: near[k] for k in ENTRY_FIELDS}, "candidate": candidate,
                "method": method, "trials": [number for number, _ in members], "budget": 2.0,
                "val_accuracy": sum(w * trained[key].mean() for w, key in terms),
                "standard_error": stats.estimate(terms, trained, noise).standard_error,
                "networks": [{"trial": number, "weight": w,
                              **{k: attrs[number][k] for k in ("depth_mult", "width_mult",
                                                               "resolution", "flops_ratio")}}
                             for number, w in members]}

    depth = stats.interpolation_weights([1.6, 2.4], 2.0)
    resolution = stats.interpolation_weights([1.7, 2.5], 2.0)
    best = max((6, 7), key=lambda number: trained[f"c{number}"].mean())
    wanted = {"baseline": (summary["baseline"], expected(0, "baseline", [(0, 1.0)])),
              "depth": (summary["at_budget"]["depth"],
                        expected(1, "interpolated", [(1, depth[0]), (4, depth[1])])),
              "width": (summary["at_budget"]["width"], expected(2, "matched", [(2, 1.0)])),
              "resolution": (summary["at_budget"]["resolution"], expected(
                  3, "interpolated", [(3, resolution[0]), (5, resolution[1])])),
              "compound": (summary["at_budget"]["compound"],
                           expected(best, "matched", [(best, 1.0)]))}
    for name, (entry, want) in wanted.items():
        assert entry.pop("val_accuracy") == pytest.approx(want.pop("val_accuracy")), name
        assert entry == want, name
    assert summary["best"] == summary["at_budget"]["compound"]


def test_a_summary_without_a_strategy_says_none_and_unmeasured_noise_has_no_std():
    rng = np.random.default_rng(21)
    trials = [trial(0, network("baseline", 0, "matched", 1.0, "base"), accurate(rng, 0.3)),
              trial(1, network("depth", 1, "matched", 2.0, "d"), accurate(rng, 0.4))]
    summary = results.search_summary(results.trial_rows(trials), 2.0)
    assert summary["at_budget"]["width"] is None and summary["best"] is None
    assert summary["at_budget"]["depth"]["trials"] == [1]
    assert summary["noise"] == {"seed_std": None, "degrees_of_freedom": 0, "images": 0}
    assert results.noise_entry(stats.NO_NOISE) == summary["noise"]


def test_rows_keep_the_extra_columns_once_and_their_order():
    rng = np.random.default_rng(22)
    trials = [trial(3, network("width", 3, "matched", 2.0, "w"), accurate(rng, 0.4, 2),
                    worker="host:17", rerun_of=1),
              trial(2, network("depth", 2, "matched", 2.0, "d"), accurate(rng, 0.4))]
    frame = results.trial_rows(trials, extra=("test_accuracy", "alpha"))
    assert list(frame.columns) == [*results.COLUMNS, "test_accuracy", *results.CORRECTNESS]
    assert frame["trial"].tolist() == [2, 3, 3] and frame["seed"].tolist() == [0, 0, 1]
    assert frame["worker"].tolist()[1:] == ["host:17", "host:17"]
    assert frame["rerun_of"].tolist()[1:] == [1, 1]
    assert results.csv_text(frame).startswith("trial,candidate,kind,")  # no index column
    empty = results.trial_rows([])
    assert len(empty) == 0 and list(empty.columns) == [*results.COLUMNS, *results.CORRECTNESS]


def test_rows_of_older_studies_get_a_candidate_and_a_bracket():
    rng = np.random.default_rng(23)
    old = {k: v for k, v in network("compound", 0, "matched", 2.0, "x").items()
           if k not in ("candidate", "bracket", "flops_matched")}
    trials = [trial(4, old, accurate(rng, 0.4)),
              trial(5, {**old, "network": "y", "flops_matched": True}, accurate(rng, 0.4)),
              trial(6, {**old, "network": "z", "flops_matched": False}, accurate(rng, 0.4))]
    frame = results.trial_rows(trials)
    assert frame["candidate"].tolist() == [4, 5, 6]
    assert frame["bracket"].tolist() == ["matched", "matched", "off budget"]
    assert [s.method for s in results.strategies(frame)] == ["matched", "matched", "off budget"]


def test_rows_of_trials_that_failed_early_were_pruned_or_are_still_training():
    rng = np.random.default_rng(24)
    trials = [
        trial(0, network("compound", 0, "matched", 2.0, "a"), state=TrialState.PRUNED,
              infeasible="params 9 > 5"),
        trial(1, network("compound", 1, "matched", 2.0, "b"), accurate(rng, 0.4, 2),
              state=TrialState.PRUNED),
        trial(2, {k: v for k, v in network("compound", 2, "matched", 2.0, "c").items()
                  if k != "flops"}, state=TrialState.FAIL),  # failed before it was measured
        trial(3, network("compound", 3, "matched", 2.0, "d"), state=TrialState.RUNNING),
        trial(4, network("compound", 4, "matched", 2.0, "e"), accurate(rng, 0.4)),
    ]
    frame = results.trial_rows(trials)
    assert frame["trial"].tolist() == [0, 1, 1, 4]  # the still-training trial has no seed yet
    assert frame["state"].tolist() == ["infeasible", "pruned", "pruned", "complete"]
    assert frame["error"].tolist()[0] == "params 9 > 5"
    # Only complete runs judge a network; a pruned network's runs do not.
    assert set(results.network_runs(frame)) == {"e"}
    methods = {s.candidate: s.method for s in results.strategies(frame)}
    assert methods == {0: "incomplete", 1: "incomplete", 4: "matched"}


def test_a_complete_run_without_correctness_does_not_judge_its_network():
    rng = np.random.default_rng(25)
    t = trial(0, network("compound", 0, "matched", 2.0, "a"), accurate(rng, 0.4, 2))
    del t.user_attrs["runs"][1]["val_correct"]  # an older run that kept only its accuracy
    trained = results.network_runs(results.trial_rows([t]))
    assert trained["a"].shape == (1, N)


def test_a_network_is_judged_by_the_lowest_numbered_trial_that_trained_it():
    rng = np.random.default_rng(26)
    frame = results.trial_rows([trial(8, network("compound", 8, "matched", 2.0, "x"),
                                      accurate(rng, 0.9, 2)),
                                trial(3, network("compound", 3, "matched", 2.0, "x"),
                                      accurate(rng, 0.1, 3))])
    for rows in (frame, frame.iloc[::-1]):
        assert results.network_runs(rows)["x"].shape == (3, N)


def test_strategies_use_the_networks_they_are_given_and_the_split_asked_for():
    rng = np.random.default_rng(27)
    trials = [trial(0, network("compound", 0, "matched", 2.0, "a"), accurate(rng, 0.4),
                    split="test"),
              trial(1, network("depth", 1, "upper", 2.3, "b"), accurate(rng, 0.4),
                    split="test")]
    frame = results.trial_rows(trials, extra=("test_accuracy",))
    by = {s.candidate: s for s in results.strategies(frame, "test")}
    assert by[0].method == "matched" and by[0].terms == [(1.0, "a")]
    assert by[1].method == "incomplete" and by[1].terms == []  # no lower network to pair with
    assert {s.method for s in results.strategies(frame, "test", trained={})} == {"incomplete"}
    assert {s.method for s in results.strategies(frame)} == {"incomplete"}  # nothing on val


def test_rows_without_a_budget_have_a_nan_budget():
    rng = np.random.default_rng(28)
    attrs = {k: v for k, v in network("width", 0, "matched", 2.0, "w").items() if k != "budget"}
    (strategy,) = results.strategies(results.trial_rows([trial(0, attrs, accurate(rng, 0.4))]))
    assert math.isnan(strategy.budget) and strategy.method == "matched"


def test_the_outputs_are_the_csv_and_the_summary(tmp_path):
    import json

    rng = np.random.default_rng(29)
    frame = results.trial_rows(study_trials(rng, {k: 0.4 for k in (
        "baseline", "depth", "width", "resolution", "c6", "c7")}))
    summary = results.search_summary(frame, 2.0)
    paths = results.write_outputs(tmp_path / "out", frame, summary)
    assert paths == [tmp_path / "out" / "trials.csv", tmp_path / "out" / "summary.json"]
    assert paths[0].read_text() == results.csv_text(frame)
    assert paths[1].read_text().endswith("}\n")
    assert json.loads(paths[1].read_text()) == summary
    named = results.write_outputs(tmp_path, frame, summary, csv="compare.csv",
                                  summary_name="compare.json")
    assert [p.name for p in named] == ["compare.csv", "compare.json"]


def test_rows_name_the_worker_and_the_trial_re_run_and_leave_out_a_dropped_trained_trial():
    rng = np.random.default_rng(30)
    trials = [trial(0, network("compound", 0, "matched", 2.0, "a"), accurate(rng, 0.4, 2),
                    worker="host:1"),
              trial(1, network("compound", 1, "matched", 2.0, "b"), accurate(rng, 0.4),
                    state=TrialState.FAIL),
              trial(2, network("compound", 1, "matched", 2.0, "b"), accurate(rng, 0.4),
                    rerun_of=1, worker="host:2"),
              # Trained, then found surplus or a duplicate (a worker that finished late).
              trial(3, network("compound", 3, "matched", 2.0, "c"), accurate(rng, 0.4),
                    surplus=True),
              trial(4, network("compound", 4, "matched", 2.0, "d"), accurate(rng, 0.4),
                    duplicate_of=0)]
    frame = results.trial_rows(trials)
    assert frame["trial"].tolist() == [0, 0, 2]
    assert frame["worker"].tolist() == ["host:1", "host:1", "host:2"]
    assert frame["rerun_of"].tolist()[2] == 1 and pd.isna(frame["rerun_of"].tolist()[0])


def test_a_study_in_another_cost_interpolates_and_picks_the_nearest_in_that_cost():
    rng = np.random.default_rng(31)
    # FLOPs say 1.6x and 2.4x; the study's cost (time) says 1.9x and 2.2x.
    lower = network("depth", 0, "lower", 1.6, "lo", cost_ratio=1.9)
    upper = network("depth", 0, "upper", 2.4, "hi", cost_ratio=2.2)
    frame = results.trial_rows([trial(0, lower, accurate(rng, 0.4)),
                                trial(1, upper, accurate(rng, 0.5))])
    (strategy,) = results.strategies(frame)
    weights = stats.interpolation_weights([1.9, 2.2], 2.0)
    assert strategy.method == "interpolated"
    assert strategy.terms == [(weights[0], "lo"), (weights[1], "hi")]
    assert strategy.nearest["network"] == "lo"  # 2.0 / 1.9 is nearer than 2.2 / 2.0
    assert results.cost_ratio(strategy.rows[0]) == 1.9
    assert results.cost_ratio({"flops_ratio": 1.6, "cost_ratio": math.nan}) == 1.6
    assert results.cost_ratio({"flops_ratio": 1.6}) == 1.6


def test_a_summary_without_a_baseline_says_none_and_the_file_is_indented_json(tmp_path):
    import json

    rng = np.random.default_rng(32)
    frame = results.trial_rows([trial(0, network("depth", 0, "matched", 2.0, "d"),
                                      accurate(rng, 0.4))])
    summary = results.search_summary(frame, 2.0)
    assert summary["baseline"] is None and summary["at_budget"]["depth"]["method"] == "matched"
    (_, path) = results.write_outputs(tmp_path, frame, summary)
    assert path.read_text() == json.dumps(summary, indent=2) + "\n"


def test_plain_values_are_python_scalars_and_nan_is_none():
    for value, plain in ((np.int64(3), 3), (np.float32(0.5), 0.5), (np.bool_(True), True),
                         (7, 7), ("x", "x"), (None, None)):
        out = results._plain(value)
        assert out == plain and type(out) is type(plain)
    for nan in (math.nan, np.float64("nan"), np.float32("nan")):
        assert results._plain(nan) is None


# ---------------------------------------------------------------------------------------------
# The decision: compound against all three single dimensions


NETWORKS = (("c", "compound", "matched", 2.02), ("d-lo", "depth", "lower", 1.6),
            ("d-hi", "depth", "upper", 2.4), ("w", "width", "matched", 2.0),
            ("r-lo", "resolution", "lower", 1.6), ("r-hi", "resolution", "upper", 2.4))


def contest(rng, levels, seeds=3, spread=0.01, images=N):
    """Compound (matched) against depth and resolution (bracketed) and width (matched), judged
    on the same images: (compound, {kind: judged}, trained). `levels`: a network key's true
    accuracy (missing keys take the key of their kind's other network, or 0.5)."""
    shared = rng.random(images)
    trained = {}
    for key, kind, _, _ in NETWORKS:
        level = levels.get(key, levels.get(kind, 0.5))
        trained[key] = np.array([shared + rng.normal(0, spread) < level
                                 for _ in range(seeds)])
    judged = {}
    for kind in ("compound", *results.SINGLE_DIMENSIONS):
        mine = [(key, bracket, ratio) for key, k, bracket, ratio in NETWORKS if k == kind]
        rows = [{"trial": i, "flops_ratio": ratio, "bracket": bracket}
                for i, (key, bracket, ratio) in enumerate(mine)]
        weights = (stats.interpolation_weights([r["flops_ratio"] for r in rows], 2.0)
                   if len(rows) == 2 else [1.0])
        strategy = results.Strategy(len(judged), kind, 2.0,
                                    "interpolated" if len(rows) == 2 else "matched", rows,
                                    [(w, key) for w, (key, _, _) in zip(weights, mine)])
        judged[kind] = results.Judged(strategy, stats.estimate(strategy.terms, trained))
    return judged.pop("compound"), judged, trained


def test_compound_wins_only_by_beating_every_single_dimension():
    rng = np.random.default_rng(40)
    compound, singles, trained = contest(rng, {"c": 0.75, "depth": 0.45, "width": 0.45,
                                               "resolution": 0.45})
    verdict = decision.decide(compound, singles, trained)
    assert verdict["answer"] == "compound"
    assert all(o["compound_better"] for o in verdict["opponents"].values())
    # The search's best single dimension (say depth) is beaten, width is not: no compound win,
    # however clearly depth and resolution lose.
    compound, singles, trained = contest(rng, {"c": 0.75, "depth": 0.45, "width": 0.75,
                                               "resolution": 0.45})
    verdict = decision.decide(compound, singles, trained)
    assert verdict["answer"] != "compound"
    assert verdict["opponents"]["depth"]["compound_better"]
    assert not verdict["opponents"]["width"]["compound_better"]
    assert verdict["single_dimension"] == "width"  # the strongest is the headline contest


def test_a_win_must_beat_the_bracket_network_that_favours_the_opponent():
    # Depth's chord at the budget lies well below compound, but its upper network (2.4x) is as
    # good as compound: the truth at the budget may be anywhere between its two networks.
    rng = np.random.default_rng(41)
    compound, singles, trained = contest(rng, {"c": 0.7, "d-lo": 0.3, "d-hi": 0.7, "width": 0.3,
                                               "resolution": 0.3})
    verdict = decision.decide(compound, singles, trained)
    depth = verdict["opponents"]["depth"]
    assert depth["interval"][0] > 0  # the chord alone would call it a compound win
    assert not depth["compound_better"] and verdict["answer"] != "compound"
    assert [p["opponent_trial"] for p in depth["pairs"]] == [0, 1]
    # and a single dimension wins only if both of its networks beat compound
    compound, singles, trained = contest(rng, {"c": 0.5, "d-lo": 0.9, "d-hi": 0.5, "width": 0.2,
                                               "resolution": 0.2})
    verdict = decision.decide(compound, singles, trained)
    assert verdict["opponents"]["depth"]["interval"][1] < 0 and verdict["answer"] != "depth"


def test_a_single_dimension_wins_when_it_beats_compound_after_holm():
    rng = np.random.default_rng(42)
    compound, singles, trained = contest(rng, {"c": 0.4, "depth": 0.4, "width": 0.8,
                                               "resolution": 0.4})
    verdict = decision.decide(compound, singles, trained)
    assert verdict["answer"] == "width"
    assert verdict["text"].startswith("Scaling width alone wins.")
    assert "Holm" in verdict["claim"]
    assert decision.holm({"a": 0.001, "b": 0.02, "c": 0.5}, 0.05) == ["a", "b"]
    assert decision.holm({"a": 0.02, "b": 0.02, "c": 0.02}, 0.05) == []  # 0.02 > 0.05 / 3
    assert decision.holm({"a": 0.01, "b": 0.02, "c": 0.04}, 0.05) == ["a", "b", "c"]


def test_equivalence_is_reachable_and_claims_the_margin():
    # Every network the same, judged on many images with quiet seeds: the 90% intervals of
    # every pair lie within one point.
    rng = np.random.default_rng(43)
    compound, singles, trained = contest(rng, {}, seeds=4, spread=0.002, images=20000)
    verdict = decision.decide(compound, singles, trained, margin=0.01)
    assert verdict["answer"] == "equivalent", verdict["text"]
    assert verdict["margin"] == 0.01 and "within 1 point(s)" in verdict["claim"]
    for opponent in verdict["opponents"].values():
        assert opponent["not_worse_by_margin"]
        assert all(-0.01 < p["interval_90"][0] for p in opponent["pairs"])
    # the same data with a margin far below its noise is inconclusive
    assert decision.decide(compound, singles, trained, margin=0.0005)["answer"] == "inconclusive"


def test_inconclusive_says_how_many_runs_would_decide_it_and_how_long_they_take():
    rng = np.random.default_rng(44)
    compound, singles, trained = contest(rng, {"c": 0.52, "depth": 0.5, "width": 0.5,
                                               "resolution": 0.5}, spread=0.03)
    verdict = decision.decide(compound, singles, trained, margin=0.02, seconds_per_run=30.0,
                              more_seeds="--confirm-seeds")
    assert verdict["answer"] == "inconclusive"
    found = verdict["to_decide"]
    runs = found["runs"]
    assert runs > 3 and found["trainings"] == 6 * (runs - 3)  # six networks, three runs each
    assert found["minutes"] == pytest.approx(found["trainings"] * 30 / 60)
    assert f"(--confirm-seeds {runs}): {found['trainings']} more trainings" in verdict["text"]
    assert verdict["text"].startswith("Inconclusive.")
    # at that many runs every pair's detectable difference is within the margin
    pairs = [stats.difference([(1.0, "c")], [(1.0, k)], trained)
             for k in ("d-lo", "d-hi", "w", "r-lo", "r-hi")]
    assert all(e.with_seeds(runs).detectable <= 0.02 for e in pairs)
    assert any(e.with_seeds(runs - 1).detectable > 0.02 for e in pairs)


@pytest.mark.parametrize("missing", ["compound", "width"])
def test_a_missing_strategy_is_undecided_and_named(missing):
    compound, singles, trained = contest(np.random.default_rng(45), {"c": 0.9})
    if missing == "compound":
        compound = None
    else:
        singles[missing] = None
    verdict = decision.decide(compound, singles, trained)
    assert verdict["answer"] == "undecided"
    assert f"no finished {missing} network at the budget" in verdict["text"]


def test_fewer_than_three_runs_of_a_compared_network_decide_nothing():
    compound, singles, trained = contest(np.random.default_rng(46), {"c": 0.95, "depth": 0.05,
                                                                     "width": 0.05,
                                                                     "resolution": 0.05})
    assert decision.decide(compound, singles, trained)["answer"] == "compound"
    trained["w"] = trained["w"][:2]
    verdict = decision.decide(compound, singles, trained, more_seeds="--confirm-seeds")
    assert verdict["answer"] == "undecided" and verdict["runs"] == 2
    assert verdict["text"] == ("No verdict: a compared network was trained 2 time(s), and each "
                               "needs at least 3 runs for noise of its own (--confirm-seeds 3 "
                               "or more).")


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(0, 2**31 - 1), st.lists(st.floats(0.2, 0.8), min_size=6, max_size=6),
       st.floats(0.002, 0.05), st.sampled_from([0.005, 0.01, 0.03]))
def test_the_answer_is_what_its_tests_say(seed, levels, spread, margin):
    keys = [key for key, *_ in NETWORKS]
    compound, singles, trained = contest(np.random.default_rng(seed), dict(zip(keys, levels)),
                                         spread=spread)
    verdict = decision.decide(compound, singles, trained, margin=margin)
    opponents = verdict["opponents"]
    pairs = [p for o in opponents.values() for p in o["pairs"]]
    # each opponent's claims are the IUT over its pairs
    for o in opponents.values():
        assert o["compound_better"] == all(p["interval"][0] > 0 for p in o["pairs"])
        assert o["p_single_better"] == max(p["p_single_better"] for p in o["pairs"])
        assert o["not_worse_by_margin"] == all(p["interval_90"][0] > -margin for p in o["pairs"])
    winners = decision.holm({k: o["p_single_better"] for k, o in opponents.items()}, 0.025)
    if verdict["answer"] == "compound":
        assert all(p["interval"][0] > 0 for p in pairs)
    elif verdict["answer"] in results.SINGLE_DIMENSIONS:
        assert verdict["answer"] in winners
        winner = opponents[verdict["answer"]]
        assert all(p["interval"][1] < 0 for p in winner["pairs"])
        assert all(opponents[k]["difference"] >= winner["difference"] for k in winners)
    elif verdict["answer"] == "equivalent":
        assert not winners and not all(o["compound_better"] for o in opponents.values())
        assert all(o["not_worse_by_margin"] for o in opponents.values())
        assert any(all(p["interval_90"][1] < margin for p in o["pairs"])
                   for o in opponents.values())
    else:
        assert verdict["answer"] == "inconclusive" and not winners
    # the headline contest is the strongest single dimension's
    strongest = max(singles, key=lambda k: singles[k].estimate.value)
    assert verdict["single_dimension"] == strongest
    assert verdict["interval"] == opponents[strongest]["interval"]
    assert verdict["detectable_difference"] == max(p["detectable_difference"] for p in pairs)


@settings(max_examples=examples(20), deadline=None)
@given(st.integers(0, 2**31 - 1), st.lists(st.floats(0.2, 0.8), min_size=4, max_size=4))
def test_relabelling_the_single_dimensions_relabels_the_answer(seed, levels):
    # Depth and resolution are both bracketed: swapping their data swaps their names.
    keys = ["c", "d-lo", "d-hi", "w"]
    compound, singles, trained = contest(np.random.default_rng(seed), dict(zip(keys, levels)),
                                         spread=0.005)
    swapped = {**trained, "d-lo": trained["r-lo"], "d-hi": trained["r-hi"],
               "r-lo": trained["d-lo"], "r-hi": trained["d-hi"]}
    a = decision.decide(compound, singles, trained)
    again = {k: results.Judged(j.strategy, stats.estimate(j.strategy.terms, swapped))
             for k, j in singles.items()}
    b = decision.decide(compound, again, swapped)
    rename = {"depth": "resolution", "resolution": "depth"}
    assert b["answer"] == rename.get(a["answer"], a["answer"])
    assert b["opponents"]["depth"]["difference"] == pytest.approx(
        a["opponents"]["resolution"]["difference"])


def test_the_verdict_text_opens_with_the_answer_and_gives_the_figures_as_computed():
    rng = np.random.default_rng(47)
    compound, singles, trained = contest(rng, {"c": 0.62, "depth": 0.5, "width": 0.5,
                                               "resolution": 0.5})
    verdict = decision.decide(compound, singles, trained)
    assert verdict["answer"] == "compound"
    head = verdict["single_dimension"]
    chord = stats.difference(compound.strategy.terms, singles[head].strategy.terms, trained)
    low, high = chord.interval()
    text = verdict["text"]
    assert text.startswith("Compound wins. compound ")
    assert (f"{chord.value * 100:+.1f} points, 95% interval {low * 100:+.1f} to "
            f"{high * 100:+.1f} (standard error {chord.standard_error * 100:.1f}, t with "
            f"{chord.degrees_of_freedom:.1f} degrees of freedom)") in text
    assert verdict["claim"] in text
    assert f"detected about {verdict['detectable_difference'] * 100:.1f} points" in text
    assert json_plain(verdict)


def json_plain(value) -> bool:
    import json

    return json.loads(json.dumps(value, allow_nan=False)) == value
