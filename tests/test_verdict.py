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
from scalesearch.store.bits import pack
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


def judged_pair(rng, first, second, seeds=2, spread=0.0):
    """Two confirmed strategies (compound, width) on the same images."""
    shared = rng.random(N)
    def net(p):
        return [shared + rng.normal(0, spread) < p for _ in range(seeds)]
    trials = [trial(0, network("compound", 0, "matched", 2.0, "c"), net(first), split="test"),
              trial(1, network("width", 1, "matched", 2.0, "w"), net(second), split="test")]
    frame = results.trial_rows(trials, extra=("test_accuracy",))
    judged, noise, trained = results.judge(frame, "test")
    by = {j.strategy.kind: j for j in judged}
    return by, noise, trained


@settings(max_examples=examples(30), deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.2, 0.6), st.floats(-0.15, 0.15))
def test_the_verdict_is_symmetric(seed, level, gap):
    by, noise, trained = judged_pair(np.random.default_rng(seed), level + gap, level,
                                     spread=0.05)
    ab = decision.decide(by["compound"], by["width"], trained, noise)
    ba = decision.decide(by["width"], by["compound"], trained, noise)
    assert ab["difference"] == pytest.approx(-ba["difference"])
    assert ab["p_value"] == pytest.approx(ba["p_value"])
    assert ab["answer"] == ba["answer"]  # who wins does not depend on which side is which


def test_a_clear_difference_wins_and_a_small_one_is_a_tie():
    rng = np.random.default_rng(4)
    by, noise, trained = judged_pair(rng, 0.6, 0.3, seeds=3, spread=0.02)
    assert decision.decide(by["compound"], by["width"], trained, noise)["answer"] == "compound"
    assert decision.decide(by["width"], by["compound"], trained, noise)["answer"] == "compound"
    by, noise, trained = judged_pair(rng, 0.41, 0.40, seeds=3, spread=0.02)
    tie = decision.decide(by["compound"], by["width"], trained, noise)
    assert tie["answer"] == "tie" and tie["detectable_difference"] > abs(tie["difference"])


def test_one_seed_per_network_is_undecided_never_a_win():
    rng = np.random.default_rng(5)
    by, noise, trained = judged_pair(rng, 0.9, 0.1, seeds=1)
    verdict = decision.decide(by["compound"], by["width"], trained, noise,
                              more_seeds="--confirm-seeds")
    assert verdict["answer"] == "undecided" and "--confirm-seeds 2" in verdict["text"]


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


def test_the_calibration_benchmark_runs_and_is_calibrated_at_a_small_size():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "verdict_calibration.py"
    spec = importlib.util.spec_from_file_location("verdict_calibration", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    studies = 40
    for setting in (bench.DEFAULT, bench.MANY):
        shares = bench.calibrate(setting, studies, seed=11)
        total, compound, single = bench.false_wins(shares)
        # 40 null studies at a true 5%: 7 or more false wins has probability below 0.4%.
        assert round(total * studies) < 7, shares
        assert "undecided" not in shares, shares
    assert math.isclose(sum(shares.values()), 1.0)


def verdict_sides(rng, compound_level, depth_level, seeds=3, spread=0.02):
    """A matched compound network (2.02x) against depth interpolated between 1.6x and 2.4x, on
    the same images: (compound, depth, trained, noise)."""
    shared = rng.random(N)

    def net(p):
        return np.array([shared + rng.normal(0, spread) < p for _ in range(seeds)])

    trained = {"c": net(compound_level), "d-lo": net(depth_level - 0.02),
               "d-hi": net(depth_level + 0.02)}
    noise = stats.seed_noise(trained)
    weights = stats.interpolation_weights([1.6, 2.4], 2.0)
    sides = [results.Strategy(0, "compound", 2.0, "matched", [{"trial": 0, "flops_ratio": 2.02}],
                              [(1.0, "c")]),
             results.Strategy(1, "depth", 2.0, "interpolated",
                              [{"trial": 1, "flops_ratio": 1.6}, {"trial": 4, "flops_ratio": 2.4}],
                              list(zip(weights, ["d-lo", "d-hi"])))]
    compound, depth = (results.Judged(s, stats.estimate(s.terms, trained, noise)) for s in sides)
    return compound, depth, trained, noise


def numbers_after(text, label):
    """The number that follows `label` in a verdict's text."""
    import re

    found = re.search(re.escape(label) + r"\s*([-+]?\d+(?:\.\d+)?)", text)
    assert found, (label, text)
    return float(found.group(1))


def test_a_verdict_records_the_test_it_made_and_says_it_in_points():
    compound, depth, trained, noise = verdict_sides(np.random.default_rng(7), 0.40, 0.40)
    verdict = decision.decide(compound, depth, trained, noise, more_seeds="--confirm-seeds")
    diff = stats.difference(compound.strategy.terms, depth.strategy.terms, trained, noise)
    assert diff.p_value >= stats.LEVEL  # equal levels: a tie
    assert {k: v for k, v in verdict.items() if k != "text"} == {
        "single_dimension": "depth", "seed_degrees_of_freedom": noise.degrees_of_freedom,
        "images": N, "difference": diff.value, "standard_error": diff.standard_error,
        "degrees_of_freedom": diff.degrees_of_freedom, "p_value": diff.p_value,
        "detectable_difference": diff.detectable, "answer": "tie"}
    text = verdict["text"]
    # Both sides by name, with their accuracy and how each was brought to the budget.
    assert text.startswith(f"compound {compound.estimate.value:.1%} (2.02x) vs depth alone "
                           f"{depth.estimate.value:.1%} (interpolated between 1.60x and 2.40x)")
    assert "compound alone" not in text
    # The difference, its standard error and the detectable difference in percentage points.
    assert numbers_after(text, ":") == pytest.approx(100 * diff.value, abs=0.051)
    assert numbers_after(text, "standard error") == pytest.approx(100 * diff.standard_error,
                                                                  abs=0.051)
    assert numbers_after(text, "t with") == pytest.approx(diff.degrees_of_freedom, abs=0.051)
    assert numbers_after(text, "p =") == pytest.approx(diff.p_value, abs=0.00051)
    assert numbers_after(text, "detected about") == pytest.approx(100 * diff.detectable,
                                                                  abs=0.051)
    assert "(--confirm-seeds)" in text  # the flag that adds seeds


@pytest.mark.parametrize("first, second, winner", [(0.7, 0.3, "compound"), (0.3, 0.7, "depth")])
def test_a_win_names_the_winner_in_the_answer_and_the_text(first, second, winner):
    compound, depth, trained, noise = verdict_sides(np.random.default_rng(8), first, second)
    verdict = decision.decide(compound, depth, trained, noise)
    assert verdict["answer"] == winner and verdict["p_value"] < stats.LEVEL
    assert (verdict["difference"] > 0) == (winner == "compound")
    ending = verdict["text"].rsplit(". ", 1)[1]
    if winner == "compound":
        assert ending == "Compound scaling wins at equal cost."
    else:
        assert ending == "Scaling depth alone wins at equal cost."


@pytest.mark.parametrize("missing", ["compound", "single"])
def test_a_missing_side_is_undecided_and_named(missing):
    compound, depth, trained, noise = verdict_sides(np.random.default_rng(9), 0.7, 0.3)
    sides = {"compound": compound, "single": depth, missing: None}
    verdict = decision.decide(sides["compound"], sides["single"], trained, noise)
    assert verdict["answer"] == "undecided"
    name = "compound network" if missing == "compound" else "single-dimension network"
    assert f"no finished {name}" in verdict["text"]


def test_two_degrees_of_freedom_of_seed_noise_decide_and_one_does_not():
    rng = np.random.default_rng(10)
    compound, depth, trained, noise = verdict_sides(rng, 0.8, 0.2, seeds=2)
    two = stats.SeedNoise(noise.between, noise.interaction, 2, noise.images)
    assert decision.decide(compound, depth, trained, two)["answer"] == "compound"
    one = stats.SeedNoise(noise.between, noise.interaction, 1, noise.images)
    verdict = decision.decide(compound, depth, trained, one)
    assert verdict["answer"] == "undecided"
    assert verdict["seed_degrees_of_freedom"] == 1 and verdict["images"] == N
    assert verdict["single_dimension"] == "depth"
    assert "1 degree(s) of freedom" in verdict["text"]
    assert "--seeds 2" in verdict["text"]  # the default flag that adds seeds


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


def test_the_verdict_text_gives_the_figures_as_computed_and_the_undecided_one_in_full():
    # A tie, a win, and a tie under loud seed noise (a standard error of about 14 points, where
    # a figure 1% off would show in its first decimal).
    for levels, loud in (((0.40, 0.40), False), ((0.75, 0.25), False), ((0.40, 0.40), True)):
        compound, depth, trained, noise = verdict_sides(np.random.default_rng(11), *levels)
        if loud:
            noise = stats.SeedNoise(0.03, noise.interaction, 6, noise.images)
        verdict = decision.decide(compound, depth, trained, noise)
        diff = stats.difference(compound.strategy.terms, depth.strategy.terms, trained, noise)
        assert (f": {diff.value * 100:+.1f} points, standard error "
                f"{diff.standard_error * 100:.1f} (t with {diff.degrees_of_freedom:.1f} degrees "
                f"of freedom, p = {diff.p_value:.3f})") in verdict["text"]
        if verdict["answer"] == "tie":
            assert (f"could have detected about {diff.detectable * 100:.1f} points (80% "
                    "power)") in verdict["text"]
    one = stats.SeedNoise(noise.between, noise.interaction, 1, noise.images)
    assert decision.decide(compound, depth, trained, one, more_seeds="--seeds")["text"] == (
        "No verdict: seed noise was measured with 1 degree(s) of freedom and needs at least 2: "
        "train each network at least twice (--seeds 2 or more).")


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
